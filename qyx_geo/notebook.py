"""Jupyter helpers: show qyx_geo's folium maps inline without internet access.

A :class:`folium.Map` displayed as is loads Leaflet and its plugins from CDNs, so on an offline
planning workstation the cell shows an empty frame. :func:`inline_map` renders the map with every
script and style inlined (the same rendering as :func:`qyx_geo.maps.save_map`) and shows it in an
``<iframe srcdoc>``, so it works offline and in exported HTML notebooks.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from qyx_geo._errors import SettingsError

__all__ = ["InlineMap", "inline_map"]


@dataclasses.dataclass(frozen=True)
class InlineMap:
    """A map page ready for display in Jupyter (anything with ``_repr_html_`` is shown).

    Attributes
    ----------
    page
        The self-contained HTML page of the map.
    height_px
        Height of the frame in the notebook, pixels.
    """

    page: str
    height_px: int = 600

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self.page, quote=True)}" '
                f'style="width:100%;height:{self.height_px}px;border:1px solid #ddd;" '
                'loading="lazy" allowfullscreen></iframe>')


def inline_map(m: Any, *, height_px: int = 600) -> InlineMap:
    """Return ``m`` (a folium map from :mod:`qyx_geo.maps`) for offline display in Jupyter.

    Parameters
    ----------
    m
        A :class:`folium.Map`, e.g. from :func:`qyx_geo.maps.service_map`.
    height_px
        Height of the map frame in pixels (200–2000).

    Raises
    ------
    SettingsError
        ``m`` is not a folium map, or ``height_px`` is out of range.
    qyx_geo._errors.AssetError
        The map needs a script or style that qyx_geo does not vendor.
    """
    import folium

    from qyx_geo.maps._offline import render_offline_html

    if not isinstance(m, folium.Map):
        msg = (f"inline_map needs a folium.Map (e.g. from qyx_geo.maps.service_map), got "
               f"{type(m).__name__!r}.")
        raise SettingsError(msg)
    if isinstance(height_px, bool) or not isinstance(height_px, int) or not (
            200 <= height_px <= 2000):
        msg = f"height_px must be an integer number of pixels in 200–2000, got {height_px!r}."
        raise SettingsError(msg)
    return InlineMap(page=render_offline_html(m), height_px=height_px)
