"""Maps of the standards' tiers: one map per tier, and the tiers layer of the overview map.

Per village/community, whether it reaches every service a tier of a standard asks for (GB
50180-2018 五分钟生活圈 …), with the per-service result in the tooltip; the overview map gains a
layer counting the tiers each unit passes. Built from :class:`qyx_geo.standards.StandardAudit`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from qyx_geo._errors import SettingsError
from qyx_geo.maps._offline import escape_text
from qyx_geo.maps._parts import (
    NOT_JUDGED_COLOUR,
    SERVICE_COLOURS,
    BasemapLayers,
    add_basemap,
    add_page_furniture,
    dataset_extent,
    display_frame,
    facility_layer,
    feature_collection,
    synthetic_layers,
)
from qyx_geo.services import get_service

if TYPE_CHECKING:
    import folium

__all__ = ["standard_tier_map", "tiers_layer"]

PASS_COLOUR, FAIL_COLOUR = "#1a9850", "#d73027"
_PALETTE = ["#b2182b", "#ef8a62", "#fddbc7", "#d1e5f0", "#67a9cf", "#2166ac"]


def _mark(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "不考核"
    return "✓" if bool(value) else "✗"


def standard_tier_map(result: Any, standard: str, tier: str, *, roads: Any = None,
                      tiles: Any = "none", township: str | None = None,
                      basemap: BasemapLayers | None = None) -> folium.Map:
    """Return the map of one tier: units passing every service of it, failing, not judged.

    Parameters
    ----------
    result
        An :class:`~qyx_geo.audit.AuditResult` scored against ``standard``.
    standard, tier
        Standard id (``gb50180-2018``) and tier id (``5min``).
    roads, tiles, township, basemap
        As for :func:`qyx_geo.maps.service_map` (``roads`` already reduced to main roads).
    """
    import folium

    if standard not in result.standards:
        msg = (f"The audit was not scored against {standard!r} (it has "
               f"{list(result.standards)!r}); pass standards=[{standard!r}] to run_audit.")
        raise SettingsError(msg)
    std = result.standards[standard]
    tiers = {t.id: t for t in std.standard.tiers}
    if tier not in tiers:
        msg = f"{std.standard.code} has no tier {tier!r}; its tiers are {list(tiers)!r}."
        raise SettingsError(msg)
    spec = tiers[tier]
    dataset = result.dataset
    units = next(iter(result.services.values())).units
    table = std.units.reindex(units.index)
    if township is not None:
        towns = dataset.townships
        by_name = {str(n): str(c) for c, n in towns["name"].items()}
        township = township if township in towns.index else by_name.get(township, township)
        keep = units["township_code"].astype(str) == township
        units, table = units[keep], table[keep]
    services = [f.service for f in spec.facilities if f"{tier}__{f.service}" in table.columns]
    all_ok = table[f"{tier}__all"]
    fill = [NOT_JUDGED_COLOUR if v is pd.NA else PASS_COLOUR if bool(v) else FAIL_COLOUR
            for v in all_ok]
    data = pd.DataFrame({"名称": units["name"].map(escape_text),
                         "镇街": units["township_name"].map(escape_text),
                         "达标": [_mark(v) for v in all_ok],
                         **{get_service(s).label_zh: table[f"{tier}__{s}"].map(_mark)
                            for s in services},
                         "_fill": fill}, index=units.index)
    m = folium.Map(tiles=None, control_scale=True, zoom_snap=0.25, zoom_delta=0.5)
    tile_layers = add_basemap(m, dataset, roads=roads, tiles=tiles, township=township,
                              layers=basemap)
    frame = display_frame(gpd.GeoDataFrame(data, geometry=units.geometry, crs=units.crs),
                          tolerance_m=15.0)
    fields = [c for c in data.columns if c != "_fill"]
    group = folium.FeatureGroup(name=escape_text(f"{spec.label_zh} {spec.label_en}"), show=True)
    folium.GeoJson(feature_collection(frame), style_function=lambda f: {
        "fillColor": f["properties"]["_fill"], "fillOpacity": 0.65, "color": "#444",
        "weight": 0.6}, highlight_function=lambda f: {"weight": 3, "color": "#000"},
        tooltip=folium.GeoJsonTooltip(fields=fields, sticky=True)).add_to(group)
    group.add_to(m)
    facilities = []
    for sid in services:
        layer = result.services[sid].facilities
        if layer is not None:
            facilities.append(layer)
            facility_layer(m, layer, get_service(sid), show=False)
    judged = int(all_ok.notna().sum())
    passing = int(all_ok.fillna(False).astype(bool).sum())
    reach = (f"{spec.distance_m:g} m" if spec.distance_m else f"{spec.minutes:g} 分钟"
             if spec.minutes else "本镇/本村设置 presence")
    legend: list[tuple[str, str, str]] = [
        ("head", "", escape_text(f"{std.standard.code} {spec.label_zh}({reach})")),
        ("fill", PASS_COLOUR, "全部服务达标 every service reached"),
        ("fill", FAIL_COLOUR, "未全部达标 some service missing"),
        ("fill", NOT_JUDGED_COLOUR, "不考核 not judged (unit kind)")]
    legend += [("dot", SERVICE_COLOURS.get(s, get_service(s).colour),
                escape_text(get_service(s).label_zh))
               for s in services]
    add_page_furniture(
        m, title=f"{std.standard.code} · {spec.label_zh} · {result.year}年",
        subtitle=escape_text(f"全部服务达标的村社 Units reaching every service: {passing}/{judged}"
                             f";出处 source: {spec.source}"),
        tile_layers=tile_layers,
        synthetic=synthetic_layers(dataset, facilities=pd.concat(facilities) if facilities
                                   else None, gaps=None),
        legend=legend, bounds=units.total_bounds, extent=dataset_extent(dataset))
    return m


def tiers_layer(m: folium.Map, result: Any, units: gpd.GeoDataFrame) -> tuple[int, int] | None:
    """Add the overview layer "tiers passed per unit" (all standards scored); return the max n.

    ``None`` (and nothing drawn) when the audit was scored against no standard.
    """
    import folium

    standards = getattr(result, "standards", None) or {}
    if not standards:
        return None
    passing = pd.Series(0, index=units.index)
    judged = pd.Series(0, index=units.index)
    detail: dict[str, pd.Series] = {}
    for std in standards.values():
        table = std.units.reindex(units.index)
        passing += table["tiers_passing"].fillna(0).astype(int)
        judged += table["tiers_judged"].fillna(0).astype(int)
        for tier in std.standard.tiers:
            detail[f"{std.standard.code} {tier.label_zh}"] = table[f"{tier.id}__all"].map(_mark)
    n_max = max(int(judged.max()) if len(judged) else 0, 1)

    def colour(k: int, n: int) -> str:
        return NOT_JUDGED_COLOUR if n == 0 else _PALETTE[round(k / n * (len(_PALETTE) - 1))]

    data = pd.DataFrame({"名称": units["name"].map(escape_text),
                         "达标层级": [f"{p}/{j}" for p, j in zip(passing, judged, strict=True)],
                         **{escape_text(k): v for k, v in detail.items()},
                         "_fill": [colour(p, j) for p, j in zip(passing, judged, strict=True)]},
                        index=units.index)
    frame = display_frame(gpd.GeoDataFrame(data, geometry=units.geometry, crs=units.crs),
                          tolerance_m=15.0)
    group = folium.FeatureGroup(name="标准层级达标数 Standard tiers passed per unit", show=False)
    folium.GeoJson(feature_collection(frame), style_function=lambda f: {
        "fillColor": f["properties"]["_fill"], "fillOpacity": 0.65, "color": "#444",
        "weight": 0.6}, tooltip=folium.GeoJsonTooltip(
            fields=[c for c in data.columns if c != "_fill"], sticky=True)).add_to(group)
    group.add_to(m)
    return int((passing == judged).sum()), n_max
