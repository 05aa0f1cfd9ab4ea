"""Parts of the maps of :mod:`qyx_geo.maps`: basemap, data layers, page furniture, formatting.

Kept apart from :mod:`qyx_geo.maps` (which assembles them into maps and writes files) so that
each stays readable: here are the vector basemap (county outline, main roads, township
boundaries and names), the optional online tile layers, the data layers (coverage choropleth,
isochrones, facilities, uncovered residents), the title, the synthetic-data notice, the legend,
the layer control and the GCJ-02 shift, and the helpers that prepare frames for display
(simplify, round to ~1 m, escape).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from qyx_geo._errors import SettingsError
from qyx_geo._validate import require_columns
from qyx_geo.crs import metric_crs_of
from qyx_geo.maps._offline import (
    GAODE_URL,
    OSM_URL,
    TILE_CHOICES,
    TileChoice,
    escape_text,
    gcj02_offset_grid,
    gcj02_shift_element,
    literal_element,
    macro_element,
)
from qyx_geo.schema import WGS84

if TYPE_CHECKING:
    import folium

__all__ = [
    "DEMAND_LABELS",
    "GAODE_URL",
    "GAP_COLOUR",
    "NOT_JUDGED_COLOUR",
    "OSM_URL",
    "SERVICE_COLOURS",
    "SHARE_CLASSES",
    "TIER_COLOURS",
    "TILE_CHOICES",
    "BasemapLayers",
    "TileChoice",
    "add_basemap",
    "add_page_furniture",
    "basemap_layers",
    "dataset_extent",
    "display_frame",
    "display_isochrone",
    "facility_layer",
    "feature_collection",
    "fmt_minutes",
    "fmt_number",
    "fmt_share",
    "gap_layer",
    "isochrone_layers",
    "required_columns",
    "share_classes",
    "share_colour",
    "synthetic_layers",
    "unit_layer",
]

#: Rounding of display coordinates: 1e-5 degree is about 1 m at Cixi's latitude.
COORD_DECIMALS = 5

_ROAD_STYLE = {"motorway": ("#e08a2e", 3.2), "trunk": ("#e08a2e", 3.0),
               "primary": ("#f0b64a", 2.4), "secondary": ("#b9b2a4", 1.8),
               "tertiary": ("#cfc9bd", 1.2)}


# ------------------------------------------------------------------------------ formatting


def fmt_share(value: object) -> str:
    """Format a share in [0, 1] as a whole percentage (``"—"`` when missing)."""
    return "—" if value is None or pd.isna(value) else f"{float(value):.0%}"  # type: ignore[arg-type]


def fmt_minutes(value: object) -> str:
    """Format minutes with one decimal and the unit (``"—"`` when missing, ``"不可达"`` if inf)."""
    if value is None or pd.isna(value):
        return "—"
    v = float(value)  # type: ignore[arg-type]
    return "不可达 unreachable" if math.isinf(v) else f"{v:.1f} 分钟"


def fmt_number(value: object) -> str:
    """Format a count with thousands separators (``"—"`` when missing)."""
    return "—" if value is None or pd.isna(value) else f"{float(value):,.0f}"  # type: ignore[arg-type]


def feature_collection(frame: gpd.GeoDataFrame) -> dict[str, Any]:
    """Return ``frame`` (WGS84, e.g. from :func:`display_frame`) as a GeoJSON dict, quickly.

    folium turns a GeoDataFrame into GeoJSON through ``__geo_interface__``, one Python object
    per coordinate (~1.5 s per county map, most of the map's time); here the geometries are
    written by GEOS all at once and parsed back by the C JSON parser. No per-feature ``bbox``.
    """
    # one parse for all geometries rather than one per feature
    geoms = json.loads("[" + ",".join(shapely.to_geojson(frame.geometry.to_numpy())) + "]")
    props = frame.drop(columns=frame.geometry.name).to_dict(orient="records")
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": p, "geometry": g}
        for p, g in zip(props, geoms, strict=True)]}


def display_frame(frame: gpd.GeoDataFrame, *, tolerance_m: float) -> gpd.GeoDataFrame:
    """Return ``frame`` in WGS84, simplified by ``tolerance_m`` and rounded to ~1 m, for display.

    Non-geometry columns become JSON-friendly (numpy scalars to Python, missing to ``None``).
    """
    if frame.crs is None:
        frame = frame.set_crs(WGS84)
    geoms = frame.geometry
    if tolerance_m > 0:
        geoms = geoms.to_crs(metric_crs_of(geoms)).simplify(tolerance_m, preserve_topology=True)
    geoms = geoms.to_crs(WGS84)
    rounded = shapely.transform(geoms.to_numpy(), lambda xy: np.round(xy, COORD_DECIMALS))
    out = gpd.GeoDataFrame(frame.drop(columns=frame.geometry.name), geometry=rounded, crs=WGS84)
    out = out[~out.geometry.is_empty & out.geometry.notna()]
    for col in out.columns:
        if col != out.geometry.name and out[col].dtype == object:
            out[col] = out[col].where(out[col].notna(), None)
    return out


# ---------------------------------------------------------------------------- provenance


def _is_synthetic(frame: Any, columns: Sequence[str] = ("source", "geometry_source")) -> int:
    if frame is None or not isinstance(frame, pd.DataFrame) or frame.empty:
        return 0
    hit = pd.Series(False, index=frame.index)
    for col in columns:
        if col in frame.columns:
            hit |= frame[col].astype(str).str.lower().eq("synthetic")
    return int(hit.sum())


def synthetic_layers(dataset: Any, *, facilities: pd.DataFrame | None,
                     gaps: pd.DataFrame | None) -> list[str]:
    """Return the (Chinese-first) names of the drawn layers whose rows are synthetic."""
    found = []
    n_fac = _is_synthetic(facilities)
    if n_fac:
        found.append(f"设施点 facilities ({n_fac}/{len(facilities)})")  # type: ignore[arg-type]
    if _is_synthetic(getattr(dataset, "demand", None)) or _is_synthetic(gaps):
        found.append("居民点与人口 residents and population")
    if _is_synthetic(getattr(dataset, "units", None)):
        found.append("村社边界 village/community boundaries")
    if _is_synthetic(getattr(dataset, "townships", None), ("geometry_source",)):
        found.append("镇街边界 township boundaries")
    network = (getattr(dataset, "provenance", None) or {}).get("network", {})
    if str(network.get("status")) == "synthetic":  # the network the audit ran on
        found.append("路网 street network")
    return found


# -------------------------------------------------------------------------------- basemap


def dataset_extent(dataset: Any) -> tuple[float, float, float, float]:
    """Return the WGS84 bounds of the dataset's outline (or of its townships)."""
    x0, y0, x1, y1 = _outline(dataset).total_bounds
    return float(x0), float(y0), float(x1), float(y1)


def _outline(dataset: Any) -> gpd.GeoDataFrame:
    outline = getattr(dataset, "outline", None)
    if isinstance(outline, gpd.GeoDataFrame):
        return outline.to_crs(WGS84)
    if outline is not None:
        return gpd.GeoDataFrame(geometry=[outline], crs=WGS84)
    return gpd.GeoDataFrame(geometry=[dataset.townships.to_crs(WGS84).union_all()], crs=WGS84)


@dataclass(frozen=True)
class BasemapLayers:
    """What the vector basemap draws, serialised once to be drawn on several maps.

    folium elements belong to one map, so every map makes its own; what they draw (GeoJSON
    text, label positions) is the same for every map of one dataset, road set and township
    and is built once by :func:`basemap_layers` (~0.1 s of CPU per map on Cixi).
    """

    #: The township code the overlay highlights (``None``: none).
    township: str | None
    #: GeoJSON text of the county outline.
    outline: str
    #: GeoJSON text of the main roads, one multi-line per class (``None``: no roads).
    roads: str | None
    #: GeoJSON text of the township boundaries (property ``_sel``: the chosen one).
    townships: str
    #: Township labels: (escaped name, latitude, longitude).
    labels: tuple[tuple[str, float, float], ...]


def _geojson_text(frame: gpd.GeoDataFrame) -> str:
    # folium parses it back into a fresh dict for each map (it may add feature ids to it)
    return json.dumps(feature_collection(frame))


def basemap_layers(dataset: Any, *, roads: gpd.GeoDataFrame | None,
                   township: str | None) -> BasemapLayers:
    """Return the basemap of ``dataset`` (outline, main ``roads``, townships) ready to draw.

    Parameters
    ----------
    dataset
        The dataset (outline, townships with ``name``).
    roads
        Main roads (:func:`qyx_geo.maps.main_roads`) or ``None``.
    township
        Township code to highlight, or ``None``.
    """
    outline = _geojson_text(display_frame(_outline(dataset)[["geometry"]], tolerance_m=20.0))
    road_text = None
    if roads is not None and not roads.empty:
        # one multi-line per class: a handful of features instead of thousands of ids
        lines = roads.explode(ignore_index=True)
        lines = lines[lines.geom_type == "LineString"]
        merged = gpd.GeoDataFrame(
            {"highway": list(lines.groupby("highway", sort=False).groups)},
            geometry=[shapely.MultiLineString(list(g.geometry))
                      for _, g in lines.groupby("highway", sort=False)], crs=lines.crs)
        road_text = _geojson_text(display_frame(merged, tolerance_m=0.0))
    townships = dataset.townships
    chosen = townships.index.astype(str) == (township or "")
    boundaries = _geojson_text(display_frame(
        # by position: the codes index would align to the new frame's 0..n and empty every shape
        gpd.GeoDataFrame({"_sel": chosen}, geometry=townships.geometry.to_numpy(),
                         crs=townships.crs),
        tolerance_m=20.0))
    metric = townships.to_crs(metric_crs_of(townships))
    spots = gpd.GeoSeries([shapely.ops.polylabel(g, tolerance=50.0) if g.geom_type == "Polygon"
                           else g.representative_point() for g in metric.geometry],
                          crs=metric.crs).to_crs(WGS84)
    labels = tuple((escape_text(name), round(pt.y, COORD_DECIMALS), round(pt.x, COORD_DECIMALS))
                   for name, pt in zip(townships["name"], spots, strict=True))
    return BasemapLayers(township=township, outline=outline, roads=road_text,
                         townships=boundaries, labels=labels)


def add_basemap(m: folium.Map, dataset: Any, *, roads: gpd.GeoDataFrame | None,
                tiles: TileChoice, township: str | None,
                layers: BasemapLayers | None = None) -> list[Any]:
    """Add the vector basemap, the township overlay and the online tile layers to ``m``.

    ``layers`` (from :func:`basemap_layers` for the same dataset, roads and township) saves
    building them again; ``dataset`` and ``roads`` are then not read.

    Returns the GCJ-02 tile layers (to shift the overlays for); pass them to
    :func:`add_page_furniture`.
    """
    import folium

    if layers is None:
        layers = basemap_layers(dataset, roads=roads, township=township)
    elif layers.township != township:
        msg = (f"The basemap layers highlight township {layers.township!r}, not {township!r}; "
               f"build them with basemap_layers(..., township={township!r}).")
        raise SettingsError(msg)
    base = folium.FeatureGroup(name="离线矢量底图 Vector basemap (offline)", overlay=False,
                               show=tiles == "none")
    folium.GeoJson(layers.outline,
                   style_function=lambda f: {"fillColor": "#f6f3ec", "fillOpacity": 1.0,
                                             "color": "#8c8c8c", "weight": 1.5},
                   interactive=False).add_to(base)
    if layers.roads is not None:
        folium.GeoJson(layers.roads, style_function=lambda f: {
            "color": _ROAD_STYLE.get(f["properties"]["highway"], ("#cccccc", 1.0))[0],
            "weight": _ROAD_STYLE.get(f["properties"]["highway"], ("#cccccc", 1.0))[1],
            "opacity": 0.9}, interactive=False).add_to(base)
    base.add_to(m)
    folium.TileLayer(OSM_URL, name="OpenStreetMap (在线 online)", overlay=False,
                     show=tiles == "osm", max_zoom=19,
                     attr="&copy; OpenStreetMap contributors").add_to(m)
    gaode = folium.TileLayer(GAODE_URL, name="高德地图 Gaode (在线 online, GCJ-02)", overlay=False,
                             show=tiles == "gaode", subdomains="1234", max_zoom=18,
                             attr="&copy; 高德地图 AutoNavi")
    gaode.add_to(m)
    _township_layer(m, layers)
    return [gaode]


def _township_layer(m: folium.Map, layers: BasemapLayers) -> None:
    import folium

    group = folium.FeatureGroup(name="镇街边界与名称 Townships", show=True)
    folium.GeoJson(layers.townships, style_function=lambda f: {
        "fill": False, "color": "#222222" if f["properties"]["_sel"] else "#555555",
        "weight": 3.0 if f["properties"]["_sel"] else 1.4, "dashArray": "6 4"},
        interactive=False).add_to(group)
    for label, lat, lon in layers.labels:
        folium.Marker([lat, lon],
                      icon=folium.DivIcon(html=f'<div class="qyx-label">{label}</div>',
                                          class_name="qyx-label-icon", icon_size=(120, 18),
                                          icon_anchor=(60, 9)),
                      interactive=False).add_to(group)
    group.add_to(m)


# -------------------------------------------------------------------------- page furniture

_CSS = """
<style>
.leaflet-container { background: #dfe9f0; }
.leaflet-container, .qyx-box { font-family: "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC",
  "WenQuanYi Micro Hei", sans-serif; }
.leaflet-control-layers { font-size: 12px; }
.qyx-label { font-size: 12px; font-weight: 600; color: #333; text-align: center;
  white-space: nowrap; text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 2px #fff; }
.qyx-box { position: absolute; z-index: 1000; background: rgba(255,255,255,0.93);
  border-radius: 4px; box-shadow: 0 1px 5px rgba(0,0,0,0.35); padding: 6px 10px;
  font-size: 12px; line-height: 1.35; color: #222; }
#qyx-title { top: 10px; left: 54px; max-width: 40%; }
#qyx-title h1 { font-size: 17px; margin: 0 0 2px 0; font-weight: 700; }
#qyx-synthetic-notice { bottom: 58px; left: 10px; max-width: 360px; background: #fff3cd;
  border: 2px solid #d39e00; color: #5c4400; }
#qyx-legend { bottom: 24px; right: 10px; max-height: 55%; overflow-y: auto; }
#qyx-legend .h { font-weight: 700; margin-top: 4px; }
#qyx-legend i { display: inline-block; width: 16px; height: 11px; margin-right: 6px;
  vertical-align: -1px; border: 1px solid rgba(0,0,0,0.25); }
#qyx-legend i.dot { border-radius: 50%; width: 11px; margin: 0 8px 0 2px; }
#qyx-legend i.line { height: 0; border: none; border-top: 2px solid; }
.leaflet-tooltip table th { text-align: left; padding-right: 6px; color: #555; }
</style>
"""


def _html_element(html: str) -> Any:
    el: Any = macro_element("QyxHtml",
                            "{% macro html(this, kwargs) %}{{ this.content }}{% endmacro %}")
    el.content = html
    return el


def add_page_furniture(m: folium.Map, *, title: str, subtitle: str, tile_layers: list[Any],
                       synthetic: list[str], legend: list[tuple[str, str, str]],
                       bounds: Sequence[float], extent: Sequence[float]) -> None:
    """Add title, synthetic-data notice, legend, layer control, GCJ-02 shift and the view.

    ``title`` is escaped here; ``subtitle`` and legend labels must be escaped by the caller or
    be the builder's own text. ``legend`` rows are ``(kind, colour, label)`` with kind
    ``head``, ``fill``, ``line`` or ``dot``. ``bounds`` is the initial view and ``extent`` the
    area over which overlays may be shifted to GCJ-02 (``min_lon, min_lat, max_lon, max_lat``).
    """
    import folium

    figure: Any = m.get_root()
    figure.title = escape_text(title)
    figure.header.add_child(literal_element(_CSS), name="qyx_css")
    m.add_child(_html_element(
        f'<div id="qyx-title" class="qyx-box"><h1>{escape_text(title)}</h1>'
        f'<div>{subtitle}</div></div>'))
    if synthetic:
        items = "、".join(escape_text(s) for s in synthetic)
        head = ("⚠ 合成数据 — 非真实设施 / Synthetic data — not real facilities"
                if any(s.startswith("设施点") for s in synthetic)
                else "⚠ 合成数据 / Synthetic data")
        m.add_child(_html_element(
            f'<div id="qyx-synthetic-notice" class="qyx-box" role="note"><b>{head}</b><br>'
            f"以下图层为合成或示意数据，仅供演示方法，不可用于决策：{items}。<br>"
            "These layers are generated for demonstration and must not be used for decisions."
            "</div>"))
    rows = []
    for kind, colour, label in legend:
        if kind == "head":
            rows.append(f'<div class="h">{label}</div>')
        else:
            style = f"border-color:{colour}" if kind == "line" else f"background:{colour}"
            css = {"dot": ' class="dot"', "line": ' class="line"'}.get(kind, "")
            rows.append(f'<div><i{css} style="{style}"></i>{label}</div>')
    m.add_child(_html_element(f'<div id="qyx-legend" class="qyx-box">{"".join(rows)}</div>'))
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    x0, y0, x1, y1 = (float(v) for v in bounds)
    if all(np.isfinite([x0, y0, x1, y1])):
        m.fit_bounds([[y0, x0], [y1, x1]])
    ex0, ey0, ex1, ey1 = (float(v) for v in extent)
    if tile_layers and all(np.isfinite([ex0, ey0, ex1, ey1])):
        m.add_child(gcj02_shift_element(m, tile_layers, gcj02_offset_grid((ex0, ey0, ex1, ey1))))


# ---------------------------------------------------------------------------- data layers

#: Choropleth classes of the share of residents within the threshold: (upper bound, colour).
SHARE_CLASSES = ((0.2, "#b2182b"), (0.4, "#ef8a62"), (0.6, "#fddbc7"), (0.8, "#d1e5f0"),
                 (1.0, "#4393c3"))
NOT_JUDGED_COLOUR = "#bdbdbd"
TIER_COLOURS = ("#08519c", "#3182bd", "#9ecae1", "#c6dbef")
SERVICE_COLOURS = {"nursery": "#e7298a", "canteen": "#d95f02", "clinic": "#1b9e77",
                   "sports": "#7570b3"}
GAP_COLOUR = "#d7301f"
#: Display of isochrones: holes (blocks) smaller than this are filled, then simplified (metres).
ISOCHRONE_MIN_HOLE_M2 = 5_000.0
ISOCHRONE_TOLERANCE_M = 10.0
DEMAND_LABELS = {"pop": "人口 Residents", "pop_0_3": "0–3岁人口 Age 0–3",
                 "pop_60p": "60岁以上人口 Age 60+"}



def share_classes(min_share: float = 0.8) -> list[tuple[str, str]]:
    """Return (colour, label) of each share class, the pass mark ✓ following ``min_share``.

    Classes wholly at or above ``min_share`` end in ✓; the class it falls inside says where
    passing starts. One rule for the HTML legend and the printed maps.

    Examples
    --------
    >>> [label for _, label in share_classes(0.9)][-2:]
    ['60%–80%', '80%–100% (≥90% ✓)']
    """
    out, lower = [], 0.0
    for upper, colour in SHARE_CLASSES:
        if lower >= min_share - 1e-9:
            mark = " ✓"
        elif min_share < upper - 1e-9:
            mark = f" (≥{min_share:.0%} ✓)"
        else:
            mark = ""
        out.append((colour, f"{lower:.0%}–{upper:.0%}{mark}"))
        lower = upper
    return out


def share_colour(share: float, judged: bool) -> str:
    if not judged or pd.isna(share):
        return NOT_JUDGED_COLOUR
    for upper, colour in SHARE_CLASSES:
        if share < upper:
            return colour
    return SHARE_CLASSES[-1][1]


def required_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise :class:`ColumnError` naming the missing columns (``_validate.require_columns``)."""
    require_columns(frame.columns, columns, source_name=what)




def unit_layer(m: folium.Map, units: gpd.GeoDataFrame, service: Any,
                facility_names: dict[str, str], *, group_name: str) -> None:
    import folium

    required_columns(units, ("name", "township_name", "population", "share_within",
                             "median_minutes", "passes", "judged"), "ServiceAudit.units")
    nearest = units.get("nearest_facility", pd.Series(index=units.index, dtype=object))
    show = pd.DataFrame({
        "名称": units["name"].map(escape_text),
        "镇街": units["township_name"].map(escape_text),
        "人口": units["population"].map(fmt_number),
        "覆盖率": units["share_within"].map(fmt_share),
        "中位时间": units["median_minutes"].map(fmt_minutes),
        "最近设施": nearest.map(lambda f: escape_text(facility_names.get(str(f), f))
                                if pd.notna(f) else "—"),
        "结论": [("达标 ✓ pass" if bool(p) else "未达标 ✗ fail") if bool(j) else "不考核 n/a"
                 for p, j in zip(units["passes"], units["judged"], strict=True)],
        "_fill": [share_colour(s, bool(j)) for s, j in
                  zip(units["share_within"], units["judged"], strict=True)],
        "_pass": units["passes"].astype(bool) & units["judged"].astype(bool),
    }, index=units.index)
    frame = display_frame(gpd.GeoDataFrame(show, geometry=units.geometry, crs=units.crs),
                          tolerance_m=15.0)
    group = folium.FeatureGroup(name=escape_text(group_name), show=True)
    fields = ["名称", "镇街", "人口", "覆盖率", "中位时间", "最近设施", "结论"]
    aliases = ["名称 Name", "镇街 Township",
               DEMAND_LABELS.get(service.demand_column, escape_text(service.demand_column)),
               "阈值内比例 Share within", "中位时间 Median", "最近设施 Nearest", "结论 Result"]
    folium.GeoJson(
        feature_collection(frame),
        style_function=lambda f: {"fillColor": f["properties"]["_fill"], "fillOpacity": 0.5,
                                  "color": "#444" if f["properties"]["_pass"] else "#b2182b",
                                  "weight": 0.6 if f["properties"]["_pass"] else 1.2},
        highlight_function=lambda f: {"weight": 3, "color": "#000"},
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases, sticky=True),
    ).add_to(group)
    group.add_to(m)


def display_isochrone(geom: Any, *, min_hole_m2: float, tolerance_m: float) -> Any:
    """Return an isochrone polygon (metric CRS) lightened for display.

    Street bands leave a hole in every block; holes smaller than ``min_hole_m2`` are blocks
    whose whole edge is reachable, so they are filled. Then the outline is simplified. This
    cuts the vertices of a county-wide 15-minute band about tenfold (measured: 478k -> 50k).
    """
    import shapely

    polygons = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    kept = []
    for poly in polygons:
        holes = [ring for ring in poly.interiors
                 if shapely.Polygon(ring).area >= min_hole_m2]
        kept.append(shapely.Polygon(poly.exterior, holes))
    return shapely.MultiPolygon(kept).simplify(tolerance_m, preserve_topology=True)


def isochrone_layers(m: folium.Map, isochrones: gpd.GeoDataFrame, service: Any, *,
                      area_m: Any = None) -> list[float]:
    import folium
    import shapely

    required_columns(isochrones, ("minutes",), "The isochrones GeoDataFrame")
    iso = isochrones.to_crs(metric_crs_of(isochrones))
    if area_m is not None:
        iso = iso.clip(area_m)
    tiers = sorted({float(v) for v in iso["minutes"]}, reverse=True)
    drawn = []
    for i, minutes in enumerate(tiers):
        part = iso[iso["minutes"] == minutes].geometry
        part = part[~part.is_empty]
        if part.empty:
            continue
        geom = part.iloc[0] if len(part) == 1 else shapely.union_all(part.to_numpy())
        geom = display_isochrone(geom, min_hole_m2=ISOCHRONE_MIN_HOLE_M2,
                                  tolerance_m=ISOCHRONE_TOLERANCE_M)
        colour = TIER_COLOURS[min(len(tiers) - 1 - i, len(TIER_COLOURS) - 1)]
        frame = display_frame(gpd.GeoDataFrame(geometry=[geom], crs=iso.crs), tolerance_m=0.0)
        name = f"{minutes:g}分钟可达范围 {service.label_en} within {minutes:g} min"
        group = folium.FeatureGroup(name=escape_text(name), show=True)
        folium.GeoJson(feature_collection(frame), style_function=lambda f, c=colour: {
            "fillColor": c, "color": c, "weight": 0.5, "fillOpacity": 0.35}).add_to(group)
        group.add_to(m)
        drawn.append(minutes)
    return drawn


def facility_layer(m: folium.Map, facilities: gpd.GeoDataFrame, service: Any, *,
                    show: bool = True) -> None:
    import folium

    if facilities.empty:
        return
    cap_unit = service.capacity_unit_zh or ""
    cap = facilities.get("capacity", pd.Series(np.nan, index=facilities.index))
    data = pd.DataFrame({
        "名称": facilities.get("name", pd.Series("", index=facilities.index)).map(escape_text),
        "级别": facilities.get("level", pd.Series("", index=facilities.index)).map(
            lambda v: escape_text(v) if pd.notna(v) else "—"),
        "容量": cap.map(lambda v: f"{fmt_number(v)} {escape_text(cap_unit)}" if pd.notna(v)
                        else "—"),
        "来源": facilities.get("source", pd.Series("", index=facilities.index)).map(escape_text),
    }, index=facilities.index)
    points = facilities.geometry.representative_point() if not (
        facilities.geom_type == "Point").all() else facilities.geometry
    frame = display_frame(gpd.GeoDataFrame(data, geometry=points, crs=facilities.crs),
                          tolerance_m=0.0)
    colour = SERVICE_COLOURS.get(service.id, getattr(service, "colour", "#333333"))
    name = f"{service.label_zh}设施 {service.label_en} facilities ({len(facilities)})"
    group = folium.FeatureGroup(name=escape_text(name), show=show)
    folium.GeoJson(
        feature_collection(frame),
        marker=folium.CircleMarker(radius=6, fill=True, fill_opacity=0.95, weight=1.5,
                                   color="#ffffff", fill_color=colour),
        tooltip=folium.GeoJsonTooltip(fields=["名称"], labels=False),
        popup=folium.GeoJsonPopup(fields=["名称", "级别", "容量", "来源"],
                                  aliases=["名称 Name", "级别 Level", "容量 Capacity",
                                           "来源 Source"]),
    ).add_to(group)
    group.add_to(m)


def gap_layer(m: folium.Map, gaps: gpd.GeoDataFrame, service: Any, threshold: float,
               unit_names: Mapping[str, str]) -> None:
    import folium

    if gaps is None or gaps.empty:
        return
    residents = pd.to_numeric(gaps.get("residents", gaps.get("population", pd.Series(
        np.nan, index=gaps.index))), errors="coerce")
    unit = gaps.get("unit_code", gaps.get("unit", pd.Series("", index=gaps.index)))
    minutes = pd.to_numeric(gaps.get("minutes", pd.Series(np.nan, index=gaps.index)),
                            errors="coerce")
    data = pd.DataFrame({
        "村社": unit.map(lambda c: escape_text(unit_names.get(str(c), c))),
        "居民": residents.map(fmt_number),
        "最近设施时间": minutes.map(lambda v: fmt_minutes(v) if np.isfinite(v) else "不可达"),
        "_r": np.clip(np.sqrt(residents.fillna(0).to_numpy()) / 3.0, 3, 14).round(1),
    }, index=gaps.index)
    points = gaps.geometry if (gaps.geom_type == "Point").all() else \
        gaps.geometry.representative_point()
    frame = display_frame(gpd.GeoDataFrame(data, geometry=points, crs=gaps.crs),
                          tolerance_m=0.0)
    name = (f"未覆盖居民点 Residents beyond {threshold:g} min "
            f"({fmt_number(residents.sum())}人)")
    group = folium.FeatureGroup(name=escape_text(name), show=True)
    folium.GeoJson(
        feature_collection(frame),
        marker=folium.CircleMarker(radius=5, fill=True, fill_opacity=0.75, weight=1,
                                   color="#7f0000", fill_color=GAP_COLOUR),
        style_function=lambda f: {"radius": f["properties"]["_r"]},
        tooltip=folium.GeoJsonTooltip(fields=["村社", "居民", "最近设施时间"],
                                      aliases=["村社 Unit", "居民 Residents",
                                               "最近设施 Nearest"]),
    ).add_to(group)
    group.add_to(m)


