"""Whether the network the audit runs on serves the region, and what the run record says of it.

:func:`check_network_serves` turns "most residents are more than the snap limit from any street"
into an error with counts and both boxes (a network of another place, a clip that misses the
county, a wrong CRS); :func:`with_network_provenance` makes the dataset's provenance name the
network actually used (``NetworkArrays.info``), so run.json, summaries and map notices do.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from types import MappingProxyType
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from qyx_geo._csr import NetworkArrays
from qyx_geo._errors import NetworkError
from qyx_geo.schema import WGS84
from qyx_geo.settings import Settings

__all__ = ["NOT_SERVED_SHARE", "check_network_serves", "with_network_provenance"]

log = logging.getLogger(__name__)


#: Share of residents (by population) or facilities beyond the snap limit above which the
#: network is taken not to serve the region: an error, not a result of "0 units pass".
NOT_SERVED_SHARE = 0.5


def _wgs84_box(xmin: float, ymin: float, xmax: float, ymax: float, crs: str) -> str:
    import pyproj

    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        return "(none)"
    w, s, e, n = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True).transform_bounds(
        xmin, ymin, xmax, ymax)
    return f"({w:.4f}, {s:.4f}, {e:.4f}, {n:.4f})"


def check_network_serves(net: NetworkArrays, points: gpd.GeoDataFrame, snapped: pd.DataFrame,
                         *, what: str, settings: Settings) -> None:
    """Raise :class:`NetworkError` when most ``points`` lie beyond the snap limit of ``net``.

    Residents are weighed by ``pop`` when the column exists. The message gives the counts and
    both boxes (west, south, east, north in WGS84), so a network of another place, a clip that
    misses the county or a wrong CRS is seen at once.
    """
    far = snapped["too_far"].to_numpy(dtype=bool)
    if not len(far) or not far.any():
        return
    weights = (pd.to_numeric(points["pop"], errors="coerce").fillna(0).to_numpy(dtype=float)
               if "pop" in points.columns else np.ones(len(far)))
    total = float(weights.sum())
    if total <= 0 or float(weights[far].sum()) / total <= NOT_SERVED_SHARE:
        return
    pts = points.to_crs(WGS84) if points.crs is not None else points
    pw, ps, pe, pn = (float(v) for v in pts.total_bounds)
    counted = (f"{int(weights[far].sum()):,} of {int(total):,} {what}" if "pop" in points
               else f"{int(far.sum()):,} of {len(far):,} {what}")
    net_box = _wgs84_box(float(net.x.min()), float(net.y.min()), float(net.x.max()),
                         float(net.y.max()), net.crs)
    msg = (f"路网未覆盖本区域 / the street network does not serve this region: {counted} lie "
           f"more than {settings.max_snap_m:g} m from any street of it; network bbox {net_box}"
           f", region bbox ({pw:.4f}, {ps:.4f}, {pe:.4f}, {pn:.4f}) (west, south, east, north, "
           "WGS84). Use a network that covers the region (e.g. `qyx network load FILE --clip "
           "W S E N` on a larger extract) or check the points' coordinates")
    raise NetworkError(msg)


def with_network_provenance(dataset: Any, net: NetworkArrays) -> Any:
    """Return the dataset whose provenance names the network the audit actually ran on.

    Only when the engine arrays know where they came from (``NetworkArrays.info``, filled by
    :func:`qyx_geo.network.load_network`): a real ``--network`` then replaces the embedded
    synthetic one in the run record, summaries and map notices.
    """
    info = getattr(net, "info", None) or {}
    prov = getattr(dataset, "provenance", None)
    if ("synthetic" not in info or prov is None or not dataclasses.is_dataclass(dataset)
            or isinstance(dataset, type)):  # a dataclass instance, not the class itself
        return dataset
    synthetic = bool(info["synthetic"])
    source = Path(str(info.get("qyx_source", "?"))).name
    detail = (f"street network file {source}"
              + (f", sha256 {str(info['source_sha256'])[:16]}…" if info.get("source_sha256")
                 else "")
              + (f", OSM data as of {info['osm_timestamp']}" if info.get("osm_timestamp")
                 else "")
              + f", {net.crs}"
              + (f"; {info['ways_cut']} ways cut at the extract's edge" if info.get("ways_cut")
                 else ""))
    old = dict(prov.get("network", {}))
    same = old.get("status") == ("synthetic" if synthetic else "real") and \
        source in str(old.get("detail", ""))
    licence = old.get("licence") if same else (
        "synthetic" if synthetic else "OSM data: ODbL 1.0 (© OpenStreetMap contributors), "
        "unless the file says otherwise")
    entry = {**old, "status": "synthetic" if synthetic else "real", "detail": detail,
             "licence": licence}
    try:
        return dataclasses.replace(dataset, provenance=MappingProxyType(
            {**dict(prov), "network": MappingProxyType(entry)}))
    except (TypeError, ValueError) as err:  # e.g. a validating __post_init__
        log.debug("dataset provenance not updated: %s", err)
        return dataset
