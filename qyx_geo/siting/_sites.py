"""Candidate sites, the sites table's geography, its files and its map layer (for siting.py).

:func:`candidate_sites` builds the default candidates (network nodes near the uncovered
residents of failing units), :func:`read_candidates` validates a user list, :func:`write_sites`
writes a proposal as CSV (UTF-8 with BOM, for Excel), XLSX and GeoJSON, and :func:`sites_layer`
draws it as a folium layer to add to :func:`qyx_geo.maps.service_map`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from qyx_geo._errors import (
    ColumnError,
    CoordinateError,
    DataFileError,
    DuplicateIdError,
    SettingsError,
)
from qyx_geo._outputs import output_set
from qyx_geo._tables import safe_table, write_csv
from qyx_geo.crs import metric_crs_of
from qyx_geo.engine import NetworkArrays, snap_points
from qyx_geo.schema import FACILITY_COLUMNS, WGS84
from qyx_geo.services import Service
from qyx_geo.settings import MODES, Settings

if TYPE_CHECKING:
    import folium

    from qyx_geo.audit import ServiceAudit
    from qyx_geo.siting import SitingResult

__all__ = [
    "CANDIDATE_RADIUS_SHARE",
    "CANDIDATE_SPACING_M",
    "audit_speed",
    "candidate_radius",
    "candidate_sites",
    "facility_rows",
    "locate",
    "read_candidates",
    "sites_layer",
    "write_sites",
]

logger = logging.getLogger(__name__)

#: Default candidate rule: network nodes within this share of the service's threshold distance
#: of an uncovered cluster of a failing unit, thinned to one per grid cell of ``spacing``.
CANDIDATE_RADIUS_SHARE = 0.5
CANDIDATE_SPACING_M = 200.0


def audit_speed(sa: ServiceAudit, settings: Settings) -> float:
    """Return the speed in m/min that the audit used (its settings' speed of its mode)."""
    mode = getattr(sa, "mode", None) or settings.mode
    return settings.speed_m_per_min(mode if mode in MODES else None)


def candidate_radius(radius_m: float | None, cutoff_m: float) -> float:
    """Return the candidate search radius: ``radius_m``, or half the threshold distance."""
    return CANDIDATE_RADIUS_SHARE * cutoff_m if radius_m is None else float(radius_m)


def candidate_sites(
    net: NetworkArrays,
    service_audit: ServiceAudit,
    *,
    radius_m: float | None = None,
    spacing_m: float = CANDIDATE_SPACING_M,
    settings: Settings | None = None,
) -> gpd.GeoDataFrame:
    """Return candidate sites: network nodes near the uncovered residents of failing units.

    Rule: take the uncovered demand points (outside the threshold, on the network, with
    residents of the service's demand group) of judged units that fail today. Every network
    node within ``radius_m`` (straight line) of one of them is eligible; the eligible nodes are
    thinned to the one nearest the centre of each ``spacing_m`` grid cell. The node at the end
    of each uncovered point's own street edge is always kept, so every uncovered cluster has a
    candidate on its doorstep.

    Parameters
    ----------
    net
        Network arrays the audit was made on.
    service_audit
        The service's audit (its ``points`` and ``units``).
    radius_m
        Search radius; default half the service's threshold distance (500 m for 15 minutes at
        4 km/h).
    spacing_m
        Grid spacing of the thinning, metres.
    settings
        Settings of the audit (its speed sets the default radius; default ``Settings()``).

    Returns
    -------
    geopandas.GeoDataFrame
        In the network's CRS, index ``candidate_id`` (``N<osm node id>``), columns ``node``
        (node position), ``name``, ``cost`` (1.0) and ``geometry``.
    """
    sa = service_audit
    svc = sa.service
    if radius_m is None:
        speed = audit_speed(sa, settings or Settings())
        radius_m = candidate_radius(None, float(sa.threshold_minutes) * speed)
    pts = sa.points
    failing = sa.units.index[sa.units["judged"].to_numpy(dtype=bool)
                             & ~sa.units["passes"].to_numpy(dtype=bool)].astype(str)
    too_far = pts["too_far"].to_numpy(dtype=bool) if "too_far" in pts else np.zeros(len(pts),
                                                                                      bool)
    mask = (pts["unit_code"].astype(str).isin(failing).to_numpy()
            & ~pts["within"].to_numpy(dtype=bool) & ~too_far
            & (pts[svc.demand_column].to_numpy(dtype=float) > 0))
    open_pts = pts[mask]
    if open_pts.empty:
        return _candidate_frame(net, np.empty(0, dtype=np.int64))
    snapped = snap_points(net, open_pts, max_snap_m=math.inf, what="uncovered demand points")
    near_end = np.where(snapped["offset_m"].to_numpy() <= 0.5 * net.edge_length_m[
        snapped["edge"].to_numpy()], snapped["u"].to_numpy(), snapped["v"].to_numpy())
    xy = shapely.get_coordinates(open_pts.geometry.to_crs(net.crs).to_numpy())
    tree = cKDTree(np.column_stack([net.x, net.y]))
    hits = tree.query_ball_point(xy, r=float(radius_m))
    eligible = np.unique(np.concatenate([np.asarray(h, dtype=np.int64) for h in hits]
                                        + [np.empty(0, dtype=np.int64)]))
    cell = np.floor(np.column_stack([net.x[eligible], net.y[eligible]]) / spacing_m)
    centre = (cell + 0.5) * spacing_m
    off = np.hypot(net.x[eligible] - centre[:, 0], net.y[eligible] - centre[:, 1])
    order = np.lexsort((eligible, off, cell[:, 1], cell[:, 0]))
    cell_sorted = cell[order]
    first = np.r_[True, np.any(cell_sorted[1:] != cell_sorted[:-1], axis=1)]
    thinned = eligible[order][first]
    nodes = np.unique(np.concatenate([thinned, near_end.astype(np.int64)]))
    logger.info("%d candidate nodes for %s (%d eligible within %g m, %d doorstep nodes)",
                nodes.size, svc.id, eligible.size, radius_m, np.unique(near_end).size)
    return _candidate_frame(net, nodes)


def _candidate_frame(net: NetworkArrays, nodes: NDArray[np.int64]) -> gpd.GeoDataFrame:
    ids = pd.Index([f"N{net.node_ids[n]}" for n in nodes], name="candidate_id", dtype=object)
    return gpd.GeoDataFrame(
        {"node": nodes, "name": pd.Series([""] * nodes.size, index=ids, dtype=object),
         "cost": np.ones(nodes.size)},
        geometry=gpd.points_from_xy(net.x[nodes], net.y[nodes]), index=ids, crs=net.crs,
    )


def read_candidates(candidates: gpd.GeoDataFrame | str | Path) -> gpd.GeoDataFrame:
    """Validate a user list of candidate sites (GeoDataFrame, CSV with lon/lat, or vector file).

    Returns a point GeoDataFrame indexed by ``candidate_id`` (str) with ``name`` and ``cost``
    (1.0 where missing). Raises :class:`ColumnError`, :class:`CoordinateError`,
    :class:`DuplicateIdError` or :class:`DataFileError` naming the bad row and the fix.
    """
    from qyx_geo._validate import read_csv, read_vector

    if isinstance(candidates, str | Path):
        path = Path(candidates)
        where = str(path)
        if path.suffix.lower() == ".csv":
            df = read_csv(path)
            cols = {c.lower(): c for c in df.columns}
            lon = next((cols[c] for c in ("lon", "lng", "longitude", "经度") if c in cols), None)
            lat = next((cols[c] for c in ("lat", "latitude", "纬度") if c in cols), None)
            if lon is None or lat is None:
                msg = (f"{where!r} needs WGS84 coordinate columns 'lon' and 'lat' (or 经度/纬度); "
                       f"its columns are {list(df.columns)!r}.")
                raise ColumnError(msg)
            xy = df[[lon, lat]].apply(pd.to_numeric, errors="coerce")
            bad = xy.isna().any(axis=1).to_numpy()
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                msg = (f"{where!r} row {row + 2}: {lon}/{lat} = "
                       f"{df.iloc[row][lon]!r}/{df.iloc[row][lat]!r} is not a number; fill in "
                       "WGS84 decimal degrees.")
                raise CoordinateError(msg)
            gdf = gpd.GeoDataFrame(df.drop(columns=[lon, lat]),
                                   geometry=gpd.points_from_xy(xy[lon], xy[lat]), crs=WGS84)
        else:
            gdf = read_vector(path)
    elif isinstance(candidates, gpd.GeoDataFrame):
        gdf, where = candidates.copy(), "candidates"
    else:
        msg = (f"candidates must be a GeoDataFrame or a file path, got "
               f"{type(candidates).__name__}.")
        raise SettingsError(msg)
    if gdf.crs is None:
        msg = f"{where}: the layer has no CRS; set it (e.g. gdf.set_crs('EPSG:4326')) first."
        raise CoordinateError(msg)
    if len(gdf) == 0:
        msg = f"{where}: no candidate sites; add at least one point."
        raise DataFileError(msg)
    geom = gdf.geometry
    bad = (geom.isna() | geom.is_empty | (geom.geom_type != "Point")).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        msg = (f"{where} row {row}: geometry {geom.iloc[row]!r} is not a point; candidate "
               "sites must be points (use .representative_point() for buildings).")
        raise CoordinateError(msg)
    if "id" in gdf.columns:
        gdf = gdf.set_index("id")
    ids = gdf.index.astype(str)
    dup = ids[ids.duplicated()]
    if len(dup):
        msg = f"{where}: candidate ids repeat, e.g. {dup[0]!r}; give every candidate its own id."
        raise DuplicateIdError(msg)
    gdf.index = pd.Index(ids, name="candidate_id")
    if "cost" in gdf.columns:
        cost = pd.to_numeric(gdf["cost"], errors="coerce")
        bad = ~(cost > 0).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            msg = (f"{where} row {row} (id {gdf.index[row]!r}): cost {gdf['cost'].iloc[row]!r} "
                   "must be a positive number; fill it in or drop the column (cost 1 each).")
            raise DataFileError(msg)
        gdf["cost"] = cost.astype(float)
    else:
        gdf["cost"] = 1.0
    gdf["name"] = gdf["name"].fillna("").astype(str) if "name" in gdf.columns else ""
    return gdf[["name", "cost", "geometry"]].to_crs(metric_crs_of(gdf))


def locate(sites: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> pd.DataFrame:
    """Return each site's unit and township: the polygon it lies in, else the nearest."""
    cols = {"unit_code": None, "unit_name": None, "township_code": None, "township_name": None}
    out = pd.DataFrame(cols, index=sites.index, dtype=object)
    if sites.empty:
        return out
    poly = units[["name", "township_code", "township_name", "geometry"]].copy()
    poly["unit_code"] = poly.index.astype(str)
    metric = metric_crs_of(poly)
    poly = poly.reset_index(drop=True).to_crs(metric)
    pts = sites[["geometry"]].to_crs(metric)
    joined = gpd.sjoin_nearest(pts, poly, how="left")
    joined = joined[~joined.index.duplicated(keep="first")]
    out["unit_code"] = joined["unit_code"]
    out["unit_name"] = joined["name"]
    out["township_code"] = joined["township_code"].astype(str)
    out["township_name"] = joined["township_name"]
    return out


def facility_rows(sites: gpd.GeoDataFrame, service: Service) -> gpd.GeoDataFrame:
    ids = pd.Index([f"proposed-{service.id}-{i}" for i in sites.index], name="id", dtype=object)
    data = {
        "name": [f"拟建{service.label_zh}点 {i}" for i in sites.index],
        "layer": service.id, "level": "拟建", "capacity": sites["capacity"].to_numpy(dtype=float),
        "township_code": sites["township_code"].to_numpy(dtype=object),
        "unit_code": sites["unit_code"].to_numpy(dtype=object), "source": "user",
    }
    out = gpd.GeoDataFrame(data, geometry=sites.geometry.to_numpy(), index=ids, crs=sites.crs)
    return out[list(FACILITY_COLUMNS)]


# ---------------------------------------------------------------------------------------------
# outputs


def _table(result: SitingResult) -> pd.DataFrame:
    """Return the sites as a plain table for CSV/XLSX."""
    sites = result.sites
    out = pd.DataFrame(sites.drop(columns="geometry"))
    out.insert(0, "site_id", out.index.astype(str))
    out.insert(1, "service", result.service.id)
    out.insert(2, "year", result.year)
    out.insert(3, "method", result.method)
    return out.reset_index(drop=True)


#: Bilingual column headers of the CSV/XLSX sites table.
HEADERS_ZH = {
    "site_id": "站点编号 site_id", "service": "服务 service", "year": "年份 year",
    "method": "方法 method", "order": "建设顺序 order", "candidate_id": "候选点 candidate_id",
    "lon": "经度 lon", "lat": "纬度 lat", "unit_code": "村社代码 unit_code",
    "unit_name": "村社 unit_name", "township_code": "镇街代码 township_code",
    "township_name": "镇街 township_name", "residents_new": "新覆盖服务人口 residents_new",
    "units_passing_new": "新达标村社数 units_passing_new",
    "population_new": "新覆盖常住人口 population_new", "capacity": "建议规模 capacity",
    "capacity_unit": "规模单位 capacity_unit", "cost": "成本 cost",
}


def write_sites(result: SitingResult, out_dir: str | os.PathLike[str], *,
                stem: str | None = None) -> dict[str, Path]:
    """Write the proposal as CSV (UTF-8 with BOM), XLSX, GeoJSON and a JSON summary, as one set.

    The four files are staged and committed together (:mod:`qyx_geo._outputs`, set
    ``site:<stem>``): a failed or interrupted write leaves the previous four untouched.

    Parameters
    ----------
    result
        A :class:`~qyx_geo.siting.SitingResult`.
    out_dir
        Folder to write into (created if needed).
    stem
        File name stem; default ``sites_<service>_<year>``.

    Returns
    -------
    dict
        ``{"csv": path, "xlsx": path, "geojson": path, "json": path}``.
    """
    folder = Path(out_dir)
    stem = stem or f"sites_{result.service.id}_{result.year}"
    table = _table(result).rename(columns=HEADERS_ZH)
    names = {kind: f"{stem}.{kind}" for kind in ("csv", "xlsx", "geojson", "json")}
    summary = result.summary()
    rows = [(k, json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v)
            for k, v in summary.items()]
    geo = result.sites.reset_index()
    geo.insert(1, "service", result.service.id)
    geo.insert(2, "year", result.year)
    with output_set(folder, f"site:{stem}") as staged:
        with staged.path(names["csv"]).open("w", encoding="utf-8-sig", newline="") as fh:
            write_csv(table, fh, index=False)
        with pd.ExcelWriter(staged.path(names["xlsx"]), engine="openpyxl") as writer:
            # names come from registers and candidate files: no formulas
            safe_table(table).to_excel(writer, sheet_name="拟建站点 sites", index=False)
            safe_table(pd.DataFrame(rows, columns=["项目 item", "值 value"])).to_excel(
                writer, sheet_name="概要 summary", index=False)
        geo.to_file(staged.path(names["geojson"]), driver="GeoJSON")
        staged.path(names["json"]).write_text(
            json.dumps(summary, ensure_ascii=False, indent=2, default=str) + "\n",
            encoding="utf-8")
    return {kind: folder / name for kind, name in names.items()}


def sites_layer(result: SitingResult, *, name: str | None = None) -> folium.FeatureGroup:
    """Return the proposed sites as a folium layer (numbered markers with escaped popups).

    Add it to a map of :mod:`qyx_geo.maps`, e.g.
    ``sites_layer(r).add_to(service_map(after.services[s], dataset))``, and write the map with
    :func:`qyx_geo.maps.save_map` (offline, every asset inlined).
    """
    try:
        import folium
    except ImportError as err:  # pragma: no cover - folium is a core dependency
        msg = "sites_layer needs folium: pip install folium"
        raise ImportError(msg) from err
    from qyx_geo.maps._offline import escape_text

    svc = result.service
    group = folium.FeatureGroup(
        name=name or f"拟建{svc.label_zh}站点 Proposed sites ({result.n_sites})", show=True)
    unit = svc.capacity_unit_zh or ""
    for sid, row in result.sites.iterrows():
        lines = [
            f"<b>{escape_text(sid)} · 第{int(row['order'])}个 (order {int(row['order'])})</b>",
            f"{escape_text(row['township_name'])} {escape_text(row['unit_name'])}",
            f"新覆盖 newly covered: {row['residents_new']:,.0f}",
            f"新达标村社 units newly passing: {int(row['units_passing_new'])}",
        ]
        if pd.notna(row["capacity"]):
            lines.append(f"建议规模 capacity: {row['capacity']:,.0f} {escape_text(unit)}")
        lines.append(f"{row['lat']:.5f}, {row['lon']:.5f}")
        folium.CircleMarker(
            location=(float(row["lat"]), float(row["lon"])), radius=8, weight=2,
            color="#7a0177", fill=True, fill_color="#f768a1", fill_opacity=0.9,
            tooltip=escape_text(f"{sid} {row['unit_name'] or ''}"),
            popup=folium.Popup("<br>".join(lines), max_width=320),
        ).add_to(group)
    return group
