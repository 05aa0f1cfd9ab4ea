"""Static print maps of an audit: PNG and PDF at A4 or A3, for meeting slides and reports.

Each map is drawn with matplotlib in the audit's metric CRS: the county outline, the travel-time
surface in its 5/10/15-minute bands (as an image, one pixel per cell), villages/communities
coloured by their share of residents within the threshold (the overview: by services passed),
main roads, township boundaries and names, facilities and uncovered residents; then the title,
legend, a scale bar, a north arrow (turned by the grid's meridian convergence, so it points to
true north), the synthetic-data notice where it applies and the credits. The PDF embeds its
Chinese font (TrueType, ``pdf.fonttype`` 42), so it prints the same anywhere.

No pyplot: every figure is a :class:`matplotlib.figure.Figure` of its own, with its settings in
an ``rc_context``; nothing global is changed.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import geopandas as gpd
import numpy as np
import pandas as pd

from qyx_geo._errors import SettingsError
from qyx_geo._io import atomic_path
from qyx_geo.maps._parts import (
    NOT_JUDGED_COLOUR,
    SERVICE_COLOURS,
    share_classes,
    share_colour,
    synthetic_layers,
)
from qyx_geo.maps._surface import banded, tier_colours
from qyx_geo.services import get_service

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from qyx_geo.surfaces import Surface

__all__ = ["PAPERS", "Paper", "print_overview_map", "print_service_map", "write_print_maps"]

log = logging.getLogger(__name__)

Paper = Literal["A4", "A3"]
#: Landscape page sizes in inches.
PAPERS: dict[str, tuple[float, float]] = {"A4": (11.69, 8.27), "A3": (16.54, 11.69)}
_PALETTE_PASSED = ("#b2182b", "#ef8a62", "#fddbc7", "#d1e5f0", "#67a9cf", "#2166ac")
_CJK = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei",
        "PingFang SC", "SimHei")


def _rc() -> Any:
    from qyx_geo.charts import cjk_font_name

    family = cjk_font_name(_CJK)
    if family is None:
        log.warning("no CJK font found among %s; Chinese text will not render in the print maps "
                    "(Debian: apt-get install fonts-wqy-microhei).", list(_CJK))
    return {"font.family": "sans-serif",
            "font.sans-serif": [*([family] if family else []), "DejaVu Sans"],
            "axes.unicode_minus": False, "pdf.fonttype": 42, "svg.fonttype": "none"}


def _check_paper(paper: str) -> tuple[float, float]:
    if paper not in PAPERS:
        msg = f"paper must be one of {list(get_args(Paper))!r}, got {paper!r}."
        raise SettingsError(msg)
    return PAPERS[paper]


# ---------------------------------------------------------------------------------- layers


def _base(ax: Axes, dataset: Any, crs: str, roads: gpd.GeoDataFrame | None) -> None:
    outline = getattr(dataset, "outline", None)
    shape = outline if isinstance(outline, gpd.GeoDataFrame) else dataset.townships.dissolve()
    shape.to_crs(crs).plot(ax=ax, facecolor="#f6f3ec", edgecolor="#8c8c8c", linewidth=0.8,
                           zorder=1)


def _roads(ax: Axes, roads: gpd.GeoDataFrame | None, crs: str) -> None:
    if roads is None or roads.empty:
        return
    widths = {"motorway": 1.4, "trunk": 1.3, "primary": 1.0, "secondary": 0.7, "tertiary": 0.4}
    lines = roads.to_crs(crs)
    for cls, width in widths.items():
        part = lines[lines["highway"] == cls] if "highway" in lines else lines
        if not part.empty:
            part.plot(ax=ax, color="#9a8f7a", linewidth=width, alpha=0.8, zorder=4)


def _townships(ax: Axes, townships: gpd.GeoDataFrame, crs: str, *, size: float) -> None:
    metric = townships.to_crs(crs)
    metric.boundary.plot(ax=ax, color="#555555", linewidth=0.8, linestyle=(0, (4, 3)), zorder=5)
    for name, geom in zip(metric["name"], metric.geometry, strict=True):
        spot = geom.representative_point()
        ax.annotate(str(name), (spot.x, spot.y), ha="center", va="center", fontsize=size,
                    color="#333333", zorder=9,
                    path_effects=_halo())


def _halo() -> list[Any]:
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=2.2, foreground="white")]


def _surface(ax: Axes, surface: Surface, tiers: Sequence[float]) -> None:
    from matplotlib.colors import ListedColormap, to_rgba

    bands = banded(surface, tiers).astype(float)
    bands[bands == 255] = np.nan
    colours = [to_rgba(c, 0.7) for c in tier_colours(len(tiers))]
    x0, y0, x1, y1 = surface.bounds
    ax.imshow(np.ma.masked_invalid(bands), extent=(x0, x1, y0, y1), origin="upper",
              cmap=ListedColormap(colours), vmin=-0.5, vmax=len(tiers) - 0.5,
              interpolation="nearest", zorder=3)


def _points(ax: Axes, frame: gpd.GeoDataFrame | None, crs: str, **style: Any) -> None:
    if frame is None or frame.empty:
        return
    pts = frame.to_crs(crs)
    geoms = pts.geometry if (pts.geom_type == "Point").all() else pts.representative_point()
    ax.scatter(geoms.x, geoms.y, **style)


# ------------------------------------------------------------------------------- furniture


def _north_arrow(ax: Axes, crs: str) -> None:
    """Draw a north arrow turned by the meridian convergence at the map's centre."""
    import pyproj

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        (x0 + x1) / 2, (y0 + y1) / 2)
    try:
        gamma = float(pyproj.Proj(crs).get_factors(lon, lat).meridian_convergence)
    except Exception:  # a CRS without projection factors: grid north
        gamma = 0.0
    dx, dy = -math.sin(math.radians(gamma)) * 0.07, math.cos(math.radians(gamma)) * 0.07
    ax.annotate("", xy=(0.05 + dx, 0.74 + dy), xytext=(0.05, 0.74), xycoords="axes fraction",
                arrowprops={"arrowstyle": "-|>,head_width=0.5,head_length=1", "color": "#222",
                            "lw": 2.0}, zorder=12)
    ax.annotate("北 N", (0.05 + dx * 1.45, 0.74 + dy * 1.45), xycoords="axes fraction",
                ha="center", va="center", fontsize=10, zorder=12,
                path_effects=_halo())


def _scale_bar(ax: Axes) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    width_m = ax.get_xlim()[1] - ax.get_xlim()[0]
    target = width_m / 6
    nice = max(v for v in (100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
               if v <= max(target, 100))
    label = f"{nice / 1000:g} 公里 km" if nice >= 1000 else f"{nice:g} 米 m"
    ax.add_artist(AnchoredSizeBar(ax.transData, nice, label, "upper left", pad=0.6,
                                  sep=4, frameon=True, size_vertical=width_m / 400,
                                  fontproperties={"size": 9}))


def _furniture(fig: Figure, ax: Axes, *, title: str, subtitle: str, legend: list[Any],
               synthetic: list[str], credits: str, crs: str) -> None:
    fig.suptitle(title, fontsize=15, y=0.975)
    fig.text(0.5, 0.925, subtitle, ha="center", fontsize=10, color="#333")
    ax.legend(handles=legend, loc="lower right", fontsize=8, framealpha=0.92, title_fontsize=9)
    _scale_bar(ax)
    _north_arrow(ax, crs)
    if synthetic:
        fac = any(s.startswith("设施点") for s in synthetic)
        head = ("【合成数据 — 非真实设施 / Synthetic data — not real facilities】" if fac
                else "【合成数据 / Synthetic data】")
        fig.text(0.012, 0.012, f"{head}\n以下图层为合成或示意数据，仅供演示方法，不可用于决策：\n"
                 + "、".join(synthetic), fontsize=7.5, color="#5c4400", va="bottom",
                 bbox={"boxstyle": "round,pad=0.4", "facecolor": "#fff3cd",
                       "edgecolor": "#d39e00", "linewidth": 1.5})
    fig.text(0.988, 0.012, credits, fontsize=6.5, color="#555", ha="right", va="bottom")


def _credits(facilities: pd.DataFrame | None, crs: str) -> str:
    parts = [f"坐标系 CRS {crs}", "qyx_geo"]
    if facilities is not None and "source" in facilities and (
            facilities["source"].astype(str) == "osm").any():
        parts.insert(0, "部分设施 © OpenStreetMap contributors (ODbL)")
    return " · ".join(parts)


def _frame(ax: Axes, area: gpd.GeoSeries, crs: str, aspect: float) -> None:
    """Fit the view on ``area`` with a margin, keeping the axes' aspect ratio."""
    x0, y0, x1, y1 = area.to_crs(crs).total_bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = (x1 - x0) * 1.06, (y1 - y0) * 1.06
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    ax.set_xlim(cx - w / 2, cx + w / 2)
    ax.set_ylim(cy - h / 2, cy + h / 2)
    ax.set_axis_off()


def _new_figure(paper: str) -> tuple[Figure, Axes, float]:
    from matplotlib.figure import Figure

    w, h = _check_paper(paper)
    fig = Figure(figsize=(w, h))
    ax = fig.add_axes((0.01, 0.03, 0.98, 0.87))
    return fig, ax, (w * 0.98) / (h * 0.87)


def _save(fig: Figure, stem: Path, *, dpi: int) -> list[Path]:
    out = []
    for ext in ("png", "pdf"):
        path = stem.with_name(f"{stem.name}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi if ext == "png" else 150,
                        metadata={"Creator": "qyx_geo"} if ext == "pdf" else None)
        out.append(path)
    return out


# ------------------------------------------------------------------------------------ maps


def print_service_map(service_audit: Any, dataset: Any, stem: str | os.PathLike[str], *,
                      crs: str, surface: Surface | None = None,
                      roads: gpd.GeoDataFrame | None = None, paper: Paper = "A4",
                      township: str | None = None, dpi: int = 200) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf``: one service's map for print; return the paths.

    Parameters
    ----------
    service_audit
        A :class:`qyx_geo.audit.ServiceAudit`.
    dataset
        The dataset the audit ran on.
    stem
        Output path without suffix.
    crs
        Metric CRS to draw in (the network's, ``result.net.crs``).
    surface
        The service's travel-time surface, drawn in its bands (``None``: no bands).
    roads
        Main roads (:func:`qyx_geo.maps.main_roads`) or ``None``.
    paper
        ``"A4"`` or ``"A3"``, landscape.
    township
        Zoom to one township (9-digit code).
    dpi
        Resolution of the PNG.
    """
    import matplotlib
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    service = get_service(service_audit.service)
    threshold = float(service_audit.threshold_minutes)
    units = service_audit.units
    if township is not None:
        units = units[units["township_code"].astype(str) == township]
    facilities = getattr(service_audit, "facilities", None)
    tiers = [] if surface is None else sorted(
        {*(t for t in service.tiers_minutes if t <= surface.reach_minutes), surface.reach_minutes})
    with matplotlib.rc_context(_rc()):
        fig, ax, aspect = _new_figure(paper)
        _base(ax, dataset, crs, roads)
        colours = [share_colour(s, bool(j)) for s, j in zip(units["share_within"], units["judged"],
                                                        strict=True)]
        metric = units.to_crs(crs)
        metric.plot(ax=ax, color=colours, alpha=0.3, edgecolor="#777", linewidth=0.25,
                    zorder=2)
        failing = metric[~units["passes"].astype(bool) & units["judged"].astype(bool)]
        if surface is not None:
            _surface(ax, surface, tiers)
        if not failing.empty:
            failing.boundary.plot(ax=ax, color="#b2182b", linewidth=0.6, zorder=6)
        _roads(ax, roads, crs)
        _townships(ax, dataset.townships if township is None else
                   dataset.townships.loc[[township]], crs, size=8 if paper == "A4" else 10)
        gaps = service_audit.gaps
        if township is not None and gaps is not None and "unit_code" in gaps:
            gaps = gaps[gaps["unit_code"].astype(str).str.startswith(township)]
        if gaps is not None and not gaps.empty:
            residents = pd.to_numeric(gaps.get("residents", gaps.get("population")),
                                      errors="coerce").fillna(0).to_numpy()
            _points(ax, gaps, crs, s=np.clip(residents / 40, 4, 60), c="#d7301f", alpha=0.7,
                    edgecolors="#7f0000", linewidths=0.3, zorder=7)
        _points(ax, facilities, crs, s=16, c=SERVICE_COLOURS.get(service.id, "#333"),
                edgecolors="white", linewidths=0.6, zorder=8)
        _frame(ax, units.geometry if not units.empty else dataset.townships.geometry, crs,
               aspect)
        # the pass mark follows the audit's min_share, as on the HTML maps
        min_share = float(getattr(service_audit, "min_share", 0.8))
        legend: list[Any] = [Patch(facecolor=c, alpha=0.3, edgecolor="#777",
                                   label=f"{label} 居民{threshold:g}分钟内")
                             for c, label in share_classes(min_share)]
        legend.append(Line2D([], [], color="#b2182b", lw=1.2, label="未达标村社 failing unit"))
        legend += [Patch(facecolor=c, alpha=0.7, label=f"步行≤{t:g}分钟 walk ≤{t:g} min")
                   for t, c in zip(tiers, tier_colours(len(tiers)), strict=True)]
        legend.append(Line2D([], [], marker="o", ls="", color=SERVICE_COLOURS.get(
            service.id, "#333"), label=f"{service.label_zh}设施 facility"))
        if gaps is not None and not gaps.empty:
            legend.append(Line2D([], [], marker="o", ls="", color="#d7301f",
                                 label="未覆盖居民点 uncovered residents"))
        place = (dataset.townships.loc[township, "name"] if township is not None
                 else _county_name(dataset))
        title = f"{place} · {service.label_zh}{threshold:g}分钟服务圈 · {service_audit.year}年"
        _furniture(fig, ax, title=title, subtitle=_subtitle(service_audit, units),
                   legend=legend, synthetic=synthetic_layers(dataset, facilities=facilities,
                                                             gaps=service_audit.gaps),
                   credits=_credits(facilities, crs), crs=crs)
        return _save(fig, Path(stem), dpi=dpi)


def print_overview_map(result: Any, stem: str | os.PathLike[str], *, crs: str,
                       roads: gpd.GeoDataFrame | None = None, paper: Paper = "A4",
                       township: str | None = None, dpi: int = 200) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf``: how many services each unit passes, for print."""
    import matplotlib
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    dataset = result.dataset
    audits = list(result.services.values())
    base = audits[0].units
    judged_n = pd.Series(0, index=base.index)
    pass_n = pd.Series(0, index=base.index)
    for audit in audits:
        u = audit.units.reindex(base.index)
        judged = u["judged"].fillna(False).astype(bool)
        judged_n += judged.astype(int)
        pass_n += (u["passes"].fillna(False).astype(bool) & judged).astype(int)
    units = base
    if township is not None:
        keep = (units["township_code"].astype(str) == township).to_numpy()
        units, judged_n, pass_n = units[keep], judged_n[keep], pass_n[keep]
    n_max = max(int(judged_n.max()) if len(judged_n) else 0, 1)

    def colour(k: int, n: int) -> str:
        if n == 0:
            return NOT_JUDGED_COLOUR
        return _PALETTE_PASSED[round(k / n * (len(_PALETTE_PASSED) - 1))]

    with matplotlib.rc_context(_rc()):
        fig, ax, aspect = _new_figure(paper)
        _base(ax, dataset, crs, roads)
        units.to_crs(crs).plot(ax=ax, color=[colour(p, j) for p, j in zip(pass_n, judged_n,
                                                                          strict=True)],
                               alpha=0.75, edgecolor="#555", linewidth=0.3, zorder=2)
        _roads(ax, roads, crs)
        _townships(ax, dataset.townships if township is None else
                   dataset.townships.loc[[township]], crs, size=8 if paper == "A4" else 10)
        _frame(ax, units.geometry, crs, aspect)
        legend: list[Any] = [Patch(facecolor=colour(k, n_max), alpha=0.75,
                                   label=f"达标 {k}/{n_max} 项服务 services passed")
                             for k in range(n_max, -1, -1)]
        legend.append(Patch(facecolor=NOT_JUDGED_COLOUR, label="不考核 not judged"))
        legend.append(Line2D([], [], color="#555", ls=(0, (4, 3)), label="镇街界 township"))
        passing = int((pass_n == judged_n).sum())
        place = (dataset.townships.loc[township, "name"] if township is not None
                 else _county_name(dataset))
        facilities = pd.concat([a.facilities for a in audits if a.facilities is not None]) \
            if any(a.facilities is not None for a in audits) else None
        _furniture(fig, ax, title=f"{place} · 15分钟公共服务圈总览 · {result.year}年",
                   subtitle=f"全部考核服务达标的村社 Units passing every judged service: "
                            f"{passing}/{len(units)}", legend=legend,
                   synthetic=synthetic_layers(dataset, facilities=facilities, gaps=None),
                   credits=_credits(facilities, crs), crs=crs)
        return _save(fig, Path(stem), dpi=dpi)


def write_print_maps(result: Any, out_dir: str | os.PathLike[str], *, crs: str,
                     surfaces: Mapping[str, Surface] | None = None,
                     roads: gpd.GeoDataFrame | None = None, paper: Paper = "A4",
                     township: str | None = None,
                     parts: Iterable[str] | None = None) -> list[Path]:
    """Write the overview and every service's print map (PNG + PDF) into ``out_dir``.

    Files are named ``overview_<paper>.png|pdf`` and ``<service>_<paper>.png|pdf``. ``parts``
    chooses some of them (``"overview"`` and service ids; default all), e.g. to share the
    work between processes.
    """
    _check_paper(paper)
    out = Path(out_dir)
    names = ["overview", *result.services]
    chosen = names if parts is None else list(parts)
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        msg = f"parts {unknown!r} are not print maps of this audit; choose from {names!r}."
        raise SettingsError(msg)
    files: list[Path] = []
    if "overview" in chosen:
        files += print_overview_map(result, out / f"overview_{paper}", crs=crs, roads=roads,
                                    paper=paper, township=township)
    for sid, audit in result.services.items():
        if sid not in chosen:
            continue
        files += print_service_map(audit, result.dataset, out / f"{sid}_{paper}", crs=crs,
                                   surface=(surfaces or {}).get(sid), roads=roads, paper=paper,
                                   township=township)
    return files


def _subtitle(service_audit: Any, units: pd.DataFrame) -> str:
    judged = units["judged"].astype(bool)
    passing = int((units["passes"].astype(bool) & judged).sum())
    n = int(judged.sum())
    text = f"达标村社 Units passing: {passing}/{n}" + (f" ({passing / n:.0%})" if n else "")
    county = service_audit.county
    target = county.get("target") if isinstance(county, Mapping) else None
    value = getattr(target, "value", target)
    if isinstance(value, int | float) and not isinstance(value, bool) and value <= 1:
        text += f" · 全市目标 Target {value:.0%}"
        met = county.get("met")
        if met is not None:
            text += " · 已达标 met" if met else (
                f" · 未达标, 差{int(county.get('shortfall_units') or 0)}个村社 not met")
    return text


def _county_name(dataset: Any) -> str:
    from qyx_geo.maps import _county_name as name

    return name(dataset)
