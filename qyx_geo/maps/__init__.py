"""Offline HTML maps of an audit: coverage choropleth, isochrones, facilities, gaps, vector basemap.

Every map is a :class:`folium.Map` (show it offline in Jupyter with
:func:`qyx_geo.notebook.inline_map`) that :func:`save_map` writes as one
self-contained HTML file: Leaflet and its styles are inlined from ``qyx_geo/maps/_assets`` and
nothing is loaded from the network unless the reader switches on an online tile layer (off by
default).
A vector basemap (county outline, township boundaries and names, main roads) keeps the map
readable with no tiles at all. When the Gaode (高德, GCJ-02) tiles are chosen, every overlay is
shifted WGS84 → GCJ-02 in the browser so it lines up with them.

All text that comes from data (facility, village and township names, sources) is escaped; a
visible notice is drawn on every map built from synthetic layers.

* :func:`service_map` — one service: coverage by village/community, 5/10/15-minute isochrones,
  facilities, uncovered residents;
* :func:`overview_map` — all services: how many each unit passes;
* :func:`write_audit_maps` — ``overview.html``, one ``<service>.html`` per service and one
  ``standard_<id>_<tier>.html`` per tier of each standard scored
  (:func:`qyx_geo.maps._standards.standard_tier_map`);
* :func:`main_roads` — the main roads of a street network for the basemap;
* :func:`save_map` — atomic, offline write of any folium map.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from qyx_geo import _io
from qyx_geo._errors import ColumnError, SettingsError
from qyx_geo._validate import township_code
from qyx_geo.crs import metric_crs_of
from qyx_geo.maps._offline import AssetMode, escape_text, external_urls, render_offline_html
from qyx_geo.maps._parts import (
    GAODE_URL,
    GAP_COLOUR,
    NOT_JUDGED_COLOUR,
    OSM_URL,
    SERVICE_COLOURS,
    TIER_COLOURS,
    TILE_CHOICES,
    BasemapLayers,
    TileChoice,
    add_basemap,
    add_page_furniture,
    basemap_layers,
    dataset_extent,
    display_frame,
    facility_layer,
    feature_collection,
    fmt_share,
    gap_layer,
    isochrone_layers,
    share_classes,
    synthetic_layers,
    unit_layer,
)
from qyx_geo.maps._standards import standard_tier_map, tiers_layer
from qyx_geo.maps._surface import surface_layer
from qyx_geo.schema import WGS84
from qyx_geo.services import get_service

if TYPE_CHECKING:
    import folium
    import networkx as nx

    from qyx_geo.surfaces import Surface

__all__ = [
    "MAIN_HIGHWAYS",
    "BasemapLayers",
    "basemap_layers",
    "main_roads",
    "overview_map",
    "save_map",
    "service_map",
    "standard_tier_map",
    "write_audit_maps",
]

logger = logging.getLogger(__name__)

#: OSM ``highway`` classes drawn as main roads on the vector basemap.
MAIN_HIGHWAYS = ("motorway", "trunk", "primary", "secondary", "tertiary")


# ------------------------------------------------------------------------------------- roads


def main_roads(network: nx.MultiDiGraph | gpd.GeoDataFrame, *,
               highways: Iterable[str] = MAIN_HIGHWAYS, simplify_m: float = 15.0,
               ) -> gpd.GeoDataFrame:
    """Return the main roads of a street network as merged, simplified WGS84 lines.

    Parameters
    ----------
    network
        An osmnx graph (projected or not) or a GeoDataFrame of its edges with a ``highway``
        column (values may be lists, as osmnx leaves them after simplification).
    highways
        OSM ``highway`` classes to keep; ``*_link`` ramps of these classes are kept too.
    simplify_m
        Douglas-Peucker tolerance in metres for display.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per class (``highway``) and merged line, in WGS84.
    """
    import networkx as nx

    keep = tuple(highways)
    wanted = {*keep, *(f"{h}_link" for h in keep)}
    if isinstance(network, nx.Graph):
        edges = _graph_edges(network, wanted)
    elif isinstance(network, gpd.GeoDataFrame):
        edges = network
    else:
        msg = (f"network must be an osmnx graph or a GeoDataFrame of its edges, got "
               f"{type(network).__name__!r}.")
        raise TypeError(msg)
    if "highway" not in edges.columns:
        msg = (f"The road edges have no 'highway' column (columns: {list(edges.columns)!r}); "
               "pass an osmnx graph or its edges from ox.graph_to_gdfs().")
        raise ColumnError(msg)
    if edges.crs is None:
        msg = "The road edges have no CRS; set it (e.g. .set_crs('EPSG:4549')) first."
        raise SettingsError(msg)
    if (set(edges.columns) == {"highway", edges.geometry.name} and edges.crs == WGS84
            and edges["highway"].isin(keep).all()):
        return edges  # already this function's output (e.g. the cached roads): nothing to do

    def first_main(value: object) -> str | None:
        values = value if isinstance(value, list | tuple) else [value]
        hits = [str(v).removesuffix("_link") for v in values if str(v) in wanted]
        return min(hits, key=keep.index) if hits else None

    cls = edges["highway"].map(first_main)
    chosen = edges.loc[cls.notna(), ["geometry"]].assign(highway=cls[cls.notna()])
    if chosen.empty:
        return gpd.GeoDataFrame({"highway": []}, geometry=[], crs=WGS84)
    import shapely

    metric_crs = metric_crs_of(chosen)
    metric = chosen.to_crs(metric_crs)
    rows = []
    for highway, group in metric.groupby("highway", sort=False):
        merged = shapely.line_merge(shapely.union_all(group.geometry.to_numpy()))
        rows.append({"highway": highway, "geometry": merged.simplify(simplify_m)})
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=metric_crs).explode(ignore_index=True)
    out["rank"] = out["highway"].map(keep.index)
    return out.sort_values("rank", ascending=False).drop(columns="rank").to_crs(WGS84)


def _graph_edges(graph: nx.Graph, wanted: set[str] | None = None) -> gpd.GeoDataFrame:
    """Return a graph's edges (one per node pair) of ``wanted`` highway classes (default all).

    Done here rather than with ``osmnx.graph_to_gdfs``, whose import alone takes seconds; the
    classes are checked before any geometry is made (main roads are a few % of the edges).
    """
    from shapely.geometry import LineString

    crs = graph.graph.get("crs")
    if crs is None:
        msg = "The street graph has no graph['crs']; load it with qyx_geo.network.load_network."
        raise SettingsError(msg)
    seen: set[frozenset[Any]] = set()
    rows, geoms = [], []
    for u, v, data in graph.edges(data=True):
        key = frozenset((u, v))
        if "highway" not in data or key in seen:
            continue
        value = data["highway"]
        seen.add(key)  # the first edge of a node pair stands for it, main road or not
        if wanted is not None and not any(
                str(h) in wanted for h in (value if isinstance(value, list | tuple) else (value,))):
            continue
        geom = data.get("geometry")
        if geom is None:
            a, b = graph.nodes[u], graph.nodes[v]
            geom = LineString([(a["x"], a["y"]), (b["x"], b["y"])])
        rows.append(value)
        geoms.append(geom)
    return gpd.GeoDataFrame({"highway": rows}, geometry=geoms, crs=crs)


# -------------------------------------------------------------------------------- helpers


def _check_tiles(tiles: str) -> TileChoice:
    if tiles not in TILE_CHOICES:
        msg = f"tiles must be one of {TILE_CHOICES!r}, got {tiles!r}."
        raise SettingsError(msg)
    return tiles  # type: ignore[return-value]


def _facilities(dataset: Any, service_id: str) -> gpd.GeoDataFrame:
    """Return the facility layer of ``service_id`` from a Dataset (mapping or one frame)."""
    layers = dataset.facilities
    if isinstance(layers, Mapping):
        if service_id not in layers:
            msg = (f"The dataset has no facility layer {service_id!r}; layers: "
                   f"{sorted(layers)!r}.")
            raise ColumnError(msg)
        return layers[service_id]
    if isinstance(layers, gpd.GeoDataFrame) and "layer" in layers.columns:
        return layers[layers["layer"] == service_id]
    msg = (f"dataset.facilities must be a mapping layer -> GeoDataFrame or a GeoDataFrame with a "
           f"'layer' column, got {type(layers).__name__!r}.")
    raise TypeError(msg)


def _township_code(townships: pd.DataFrame, township: str | None) -> str | None:
    """Resolve a township name or 9-digit code to its code (``None`` stays ``None``)."""
    return None if township is None else township_code(townships, township)


def _clip_to(frame: gpd.GeoDataFrame | None, area: Any) -> gpd.GeoDataFrame | None:
    if frame is None or area is None or frame.empty:
        return frame
    return frame[frame.intersects(area)]


def _county_name(dataset: Any) -> str:
    from qyx_geo.report import region_names

    return region_names(dataset)[0]


def _main_roads(roads: nx.MultiDiGraph | gpd.GeoDataFrame | None,
                basemap: BasemapLayers | None) -> gpd.GeoDataFrame | None:
    return None if roads is None or basemap is not None else main_roads(roads)


def _facility_names(facilities: gpd.GeoDataFrame) -> dict[str, str]:
    return {str(k): str(v) for k, v in facilities["name"].items()} if "name" in facilities else {}


# --------------------------------------------------------------------------------- builders


def service_map(service_audit: Any, dataset: Any, *,
                isochrones: gpd.GeoDataFrame | None = None,
                roads: nx.MultiDiGraph | gpd.GeoDataFrame | None = None,
                tiles: TileChoice = "none", township: str | None = None,
                title: str | None = None, surface: Surface | None = None,
                basemap: BasemapLayers | None = None) -> folium.Map:
    """Return the map of one service's audit (shown inline in Jupyter; save with :func:`save_map`).

    Parameters
    ----------
    service_audit
        A :class:`qyx_geo.audit.ServiceAudit`.
    dataset
        The :class:`qyx_geo.dataset.Dataset` the audit ran on (outline, townships, facilities).
    isochrones
        Isochrone polygons with a ``minutes`` column, as :func:`qyx_geo.isochrones.isochrones`
        returns them (dissolved per tier); omitted when ``None``.
    surface
        The service's travel-time surface (:func:`qyx_geo.surfaces.travel_time_surface`). A
        county map draws it as one banded image (tiers: those of ``isochrones``, else the
        service's up to the surface's reach, and the reach) instead of the isochrone polygons;
        a township map keeps the polygons.
    roads
        A street network (osmnx graph or edges) for the basemap's main roads, or ``None``.
    tiles
        Online tile layer shown first: ``"none"`` (default, vector basemap only), ``"osm"`` or
        ``"gaode"``. The others stay selectable in the layer control.
    township
        Restrict the map to one township (name or 9-digit code).
    title
        Title text; by default built from the service, year and county result.
    basemap
        The basemap's layers from :func:`basemap_layers` for this dataset, roads and
        township, to share between maps (``roads`` is then not read); built when ``None``.
    """
    import folium

    tiles = _check_tiles(tiles)
    service = get_service(service_audit.service)
    code = _township_code(dataset.townships, township)
    units = service_audit.units
    facilities = getattr(service_audit, "facilities", None)
    if facilities is None:
        facilities = _facilities(dataset, service.id)
    area = area_m = None
    if code is not None:
        units = units[units["township_code"].astype(str) == code]
        town = dataset.townships.loc[[code]]
        near = town.to_crs(metric_crs_of(town)).buffer(1500)
        area_m, area = near.iloc[0], near.to_crs(WGS84).iloc[0]
    m = folium.Map(tiles=None, control_scale=True, zoom_snap=0.25, zoom_delta=0.5)
    tile_layers = add_basemap(m, dataset, roads=_main_roads(roads, basemap), tiles=tiles,
                              township=code, layers=basemap)
    threshold = float(service_audit.threshold_minutes)
    group_name = (f"村社覆盖率 Coverage ({service.label_zh}, ≤{threshold:g}分钟)")
    unit_layer(m, units, service, _facility_names(facilities),
                group_name=group_name)
    tiers: list[float] = []
    if surface is not None and code is None:
        wanted = (sorted({float(t) for t in isochrones["minutes"]}) if isochrones is not None
                  and not isochrones.empty else sorted(
                      {*(t for t in service.tiers_minutes if t <= surface.reach_minutes),
                       surface.reach_minutes}))
        tiers = surface_layer(m, surface, wanted, service) if wanted else []
    elif isochrones is not None and not isochrones.empty:
        tiers = isochrone_layers(m, isochrones, service, area_m=area_m)
    facility_layer(m, _clip_to(facilities, area), service)
    gaps = service_audit.gaps
    if code is not None and gaps is not None and "unit_code" in gaps:
        gaps = gaps[gaps["unit_code"].astype(str).str.startswith(code)]
    gap_layer(m, gaps, service, threshold,
               {str(k): str(v) for k, v in service_audit.units["name"].items()})
    county = service_audit.county
    if title is None:
        place = dataset.townships.loc[code, "name"] if code else _county_name(dataset)
        title = f"{place} · {service.label_zh}{threshold:g}分钟服务圈 · {service_audit.year}年"
    subtitle = _county_line(county, units, service)
    add_page_furniture(
        m, title=title, subtitle=subtitle, tile_layers=tile_layers,
        synthetic=synthetic_layers(dataset, facilities=facilities,
                                   gaps=service_audit.gaps),
        legend=_service_legend(service, threshold, tiers, has_gaps=gaps is not None
                               and not gaps.empty,
                               min_share=float(getattr(service_audit, "min_share", 0.8)))
        + _osm_credit(facilities),
        bounds=(units if not units.empty else dataset.townships).total_bounds,
        extent=dataset_extent(dataset))
    return m


def _county_line(county: Mapping[str, Any], units: pd.DataFrame, service: Any) -> str:
    judged = units["judged"].astype(bool)
    passing = int((units["passes"].astype(bool) & judged).sum())
    n = int(judged.sum())
    text = f"达标村社 Units passing: {passing}/{n}"
    if n:
        text += f" ({passing / n:.0%})"
    target = county.get("target") if isinstance(county, Mapping) else None
    value = getattr(target, "value", target)
    if isinstance(value, int | float) and not isinstance(value, bool):
        text += f" · 全市目标 Target {value:.0%}" if value <= 1 else f" · 目标 {value:g}"
        met = county.get("met")
        if met is not None:
            text += " · 已达标 met" if met else (
                f" · 未达标, 差{int(county.get('shortfall_units') or 0)}个村社 not met")
    return escape_text(text)


def _service_legend(service: Any, threshold: float, tiers: list[float], *,
                    has_gaps: bool, min_share: float = 0.8) -> list[tuple[str, str, str]]:
    """Legend rows (kind, colour, label): kind is ``fill``, ``line`` or ``dot``.

    The pass mark ✓ follows ``min_share`` (the audit's setting): classes wholly at or above it
    are marked, and a class it falls inside says where passing starts.
    """
    rows: list[tuple[str, str, str]] = [
        ("head", "", f"{threshold:g}分钟内居民比例 Share within (≥{min_share:.0%} 达标 passes ✓)")]
    rows += [("fill", colour, label) for colour, label in share_classes(min_share)]
    rows.append(("fill", NOT_JUDGED_COLOUR, "不考核 not judged"))
    rows.append(("line", "#b2182b", "未达标村社边框 failing unit"))
    if tiers:
        rows.append(("head", "", "步行可达范围 Walking isochrones"))
        for i, minutes in enumerate(sorted(tiers)):
            rows.append(("fill", TIER_COLOURS[min(i, len(TIER_COLOURS) - 1)],
                         f"≤{minutes:g} 分钟 min"))
    rows.append(("dot", SERVICE_COLOURS.get(service.id, getattr(service, "colour", "#333")),
                 f"{service.label_zh}设施 facility"))
    if has_gaps:
        rows.append(("dot", GAP_COLOUR, "未覆盖居民点 uncovered residents"))
    return rows


def _osm_credit(facilities: pd.DataFrame | None) -> list[tuple[str, str, str]]:
    """Return a legend line crediting OpenStreetMap when OSM rows are drawn (ODbL needs it)."""
    if facilities is None or "source" not in facilities or not (
            facilities["source"].astype(str) == "osm").any():
        return []
    return [("head", "", "部分设施来自 OpenStreetMap<br>© OpenStreetMap contributors (ODbL)")]


def overview_map(result: Any, *, roads: nx.MultiDiGraph | gpd.GeoDataFrame | None = None,
                 tiles: TileChoice = "none", township: str | None = None,
                 basemap: BasemapLayers | None = None) -> folium.Map:
    """Return the overview map: per village/community, how many services it passes.

    Parameters
    ----------
    result
        A :class:`qyx_geo.audit.AuditResult`.
    roads, tiles, township, basemap
        As for :func:`service_map`.
    """
    import folium

    tiles = _check_tiles(tiles)
    dataset = result.dataset
    audits = list(result.services.values())
    if not audits:
        msg = "The audit result has no services to map; run the audit with at least one service."
        raise SettingsError(msg)
    code = _township_code(dataset.townships, township)
    base = audits[0].units
    table = pd.DataFrame(index=base.index)
    judged_n = pd.Series(0, index=base.index)
    pass_n = pd.Series(0, index=base.index)
    for audit in audits:
        u = audit.units.reindex(base.index)
        judged = u["judged"].fillna(False).astype(bool)
        passes = u["passes"].fillna(False).astype(bool) & judged
        judged_n += judged.astype(int)
        pass_n += passes.astype(int)
        label = get_service(audit.service).label_zh
        table[label] = np.where(~judged, "不考核", np.where(passes, "✓ " + u["share_within"].map(
            fmt_share), "✗ " + u["share_within"].map(fmt_share)))
    units = base
    if code is not None:
        keep = units["township_code"].astype(str) == code
        units, table, judged_n, pass_n = units[keep], table[keep], judged_n[keep], pass_n[keep]
    m = folium.Map(tiles=None, control_scale=True, zoom_snap=0.25, zoom_delta=0.5)
    tile_layers = add_basemap(m, dataset, roads=_main_roads(roads, basemap), tiles=tiles,
                              township=code, layers=basemap)
    n_max = max(int(judged_n.max()) if len(judged_n) else 0, 1)
    palette = ["#b2182b", "#ef8a62", "#fddbc7", "#d1e5f0", "#67a9cf", "#2166ac"]

    def colour(k: int, n: int) -> str:
        if n == 0:
            return NOT_JUDGED_COLOUR
        return palette[round(k / n * (len(palette) - 1))]

    data = pd.DataFrame({"名称": units["name"].map(escape_text),
                         "镇街": units["township_name"].map(escape_text),
                         "达标数": [f"{p}/{j}" for p, j in zip(pass_n, judged_n, strict=True)],
                         **{k: table[k] for k in table.columns},
                         "_fill": [colour(p, j) for p, j in zip(pass_n, judged_n, strict=True)]},
                        index=units.index)
    frame = display_frame(gpd.GeoDataFrame(data, geometry=units.geometry, crs=units.crs),
                          tolerance_m=15.0)
    fields = ["名称", "镇街", "达标数", *table.columns]
    group = folium.FeatureGroup(name="村社达标服务数 Services passed per unit", show=True)
    folium.GeoJson(feature_collection(frame), style_function=lambda f: {
        "fillColor": f["properties"]["_fill"], "fillOpacity": 0.65, "color": "#444",
        "weight": 0.6}, highlight_function=lambda f: {"weight": 3, "color": "#000"},
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=[
            "名称 Name", "镇街 Township", "达标服务 Services passed", *table.columns],
            sticky=True)).add_to(group)
    group.add_to(m)
    tiers = tiers_layer(m, result, units)
    all_facilities = []
    for audit in audits:
        service = get_service(audit.service)
        fac = getattr(audit, "facilities", None)
        if fac is None:
            fac = _facilities(dataset, service.id)
        all_facilities.append(fac)
        facility_layer(m, _clip_to(fac, None if code is None else
                                    dataset.townships.loc[[code]].union_all()), service,
                        show=False)
    legend: list[tuple[str, str, str]] = [("head", "", "达标服务数 Services passed")]
    for k in range(n_max, -1, -1):
        legend.append(("fill", colour(k, n_max), f"{k}/{n_max}"))
    legend.append(("fill", NOT_JUDGED_COLOUR, "不考核 not judged"))
    if tiers is not None:
        legend.append(("head", "", f"标准层级达标 tiers passed: {tiers[0]}/{len(units)} 村社全部"
                                   "达标 (layer 标准层级达标数)"))
    for audit in audits:
        service = get_service(audit.service)
        legend.append(("dot", SERVICE_COLOURS.get(service.id, getattr(service, "colour", "#333")),
                       f"{service.label_zh}设施 {service.label_en}"))
    legend += _osm_credit(pd.concat(all_facilities) if all_facilities else None)
    place = dataset.townships.loc[code, "name"] if code else _county_name(dataset)
    passing_all = int((pass_n == judged_n).sum())
    add_page_furniture(
        m, title=f"{place} · 15分钟公共服务圈总览 · {result.year}年",
        subtitle=escape_text(f"全部考核服务达标的村社 Units passing every judged service: "
                             f"{passing_all}/{len(units)}"),
        tile_layers=tile_layers,
        synthetic=synthetic_layers(dataset, facilities=pd.concat(all_facilities)
                                   if all_facilities else None, gaps=None),
        legend=legend, bounds=(units if not units.empty else dataset.townships).total_bounds,
        extent=dataset_extent(dataset))
    return m


# ----------------------------------------------------------------------------------- output


def save_map(m: folium.Map, path: str | os.PathLike[str], *, assets: AssetMode = "auto") -> Path:
    """Write ``m`` as one self-contained offline HTML file, atomically; return the path.

    Raises
    ------
    qyx_geo._errors.AssetError
        If the map needs a script or style that is not vendored (nothing is written).
    """
    page = render_offline_html(m, assets=assets)
    leaks = external_urls(page, allow=(OSM_URL.split("{")[0], GAODE_URL.split("{")[0]))
    if leaks:
        msg = (f"The map would load {leaks[:3]!r} from the network; refusing to write "
               f"{os.fspath(path)!r}. Vendor the asset under qyx_geo/maps/_assets.")
        raise SettingsError(msg)
    out = _io.atomic_write_text(path, page)
    logger.info("wrote %s (%.0f kB)", out, len(page.encode("utf-8")) / 1024)
    return out


def _service_isochrones(result: Any, audit: Any) -> gpd.GeoDataFrame | None:
    """Compute the dissolved isochrones of one audited service on the audit's network."""
    from qyx_geo.isochrones import isochrones

    service = get_service(audit.service)
    facilities = getattr(audit, "facilities", None)
    if facilities is None:
        facilities = _facilities(result.dataset, service.id)
    if facilities.empty:
        return None
    return isochrones(result.net, facilities, minutes=service.tiers_minutes,
                      settings=result.settings, mode=getattr(audit, "mode", None))


def write_audit_maps(result: Any, out_dir: str | os.PathLike[str], *,
                     services: Iterable[str] | None = None,
                     isochrones: Mapping[str, gpd.GeoDataFrame] | bool = True,
                     roads: nx.MultiDiGraph | gpd.GeoDataFrame | None = None,
                     tiles: TileChoice = "none", township: str | None = None,
                     assets: AssetMode = "auto",
                     surfaces: Mapping[str, Surface] | None = None) -> list[Path]:
    """Write ``overview.html`` and one ``<service>.html`` per service into ``out_dir``.

    Parameters
    ----------
    result
        A :class:`qyx_geo.audit.AuditResult`.
    out_dir
        Folder for the HTML files (created if needed). Each file is written atomically.
    services
        Service ids to map (default: every service in ``result``).
    isochrones
        ``True`` (default): compute each service's dissolved 5/10/15-minute isochrones on the
        audit's network (``result.net``; skipped with a warning when it has none); ``False``:
        none; or a mapping service id -> polygons with a ``minutes`` column.
    roads
        Street network (osmnx graph or edges) for the basemap's main roads; default: the
        dataset's network if one is attached (``Dataset.with_network``). Pass an empty
        GeoDataFrame to draw none.
    tiles, township, assets
        As for :func:`service_map` and :func:`save_map`.
    surfaces
        Service id -> travel-time surface: the county maps draw it as a banded image.

    Returns
    -------
    list of pathlib.Path
        The files written, overview first.
    """
    ids = list(result.services) if services is None else [get_service(s).id for s in services]
    missing = [s for s in ids if s not in result.services]
    if missing:
        msg = (f"Services {missing!r} are not in the audit result (it has "
               f"{list(result.services)!r}); rerun the audit with them.")
        raise SettingsError(msg)
    if isochrones is True and getattr(result, "net", None) is None:
        logger.warning("the audit result carries no network arrays; maps drawn without isochrones")
        isochrones = False
    if roads is None:
        roads = getattr(result.dataset, "network", None)
    out = Path(out_dir)
    road_lines = None if roads is None else main_roads(roads)
    # the basemap is the same on every map: its layers' data is built once
    basemap = basemap_layers(result.dataset, roads=road_lines,
                             township=_township_code(result.dataset.townships, township))
    written = [save_map(overview_map(result, roads=road_lines, tiles=tiles, township=township,
                                     basemap=basemap),
                        out / "overview.html", assets=assets)]
    for sid in ids:
        audit = result.services[sid]
        if isinstance(isochrones, Mapping):
            iso = isochrones.get(sid)
        else:
            iso = _service_isochrones(result, audit) if isochrones else None
        m = service_map(audit, result.dataset, isochrones=iso, roads=road_lines, tiles=tiles,
                        township=township, surface=(surfaces or {}).get(sid), basemap=basemap)
        written.append(save_map(m, out / f"{sid}.html", assets=assets))
    for std_id, std in getattr(result, "standards", {}).items():  # one map per standard tier
        for tier in std.standard.tiers:
            m = standard_tier_map(result, std_id, tier.id, roads=road_lines, tiles=tiles,
                                  township=township, basemap=basemap)
            written.append(save_map(m, out / f"standard_{std_id}_{tier.id}.html",
                                    assets=assets))
    return written
