"""Charts for planners (matplotlib): township rankings and before/after comparisons.

Labels are Chinese-first, so a CJK font is needed: :func:`use_cjk_font` picks one that is
installed (Noto Sans CJK, Source Han Sans, WenQuanYi, Microsoft YaHei, PingFang, SimHei, ...) and
falls back to matplotlib's default, with a warning in the log, when there is none (on Debian:
``apt-get install fonts-noto-cjk``). matplotlib is imported when a function is called, not at
import time; it is an optional dependency (``pip install matplotlib``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qyx_geo._errors import SettingsError
from qyx_geo._validate import require_columns, township_code

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "CJK_FONTS",
    "access_curves",
    "cjk_font_name",
    "comparison_chart",
    "ranking_chart",
    "use_cjk_font",
]

logger = logging.getLogger(__name__)

#: Font families tried in order by :func:`use_cjk_font` (simplified Chinese first).
CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC",
    "Hiragino Sans GB", "Heiti SC", "SimHei", "Sarasa Gothic SC", "Noto Sans CJK JP",
    "Arial Unicode MS",
)

_PASS = "#2b8a3e"
_FAIL = "#e8590c"
_BEFORE = "#adb5bd"
_HIGHLIGHT = "#1c7ed6"


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        msg = "qyx_geo.charts needs matplotlib: `pip install matplotlib`."
        raise ImportError(msg) from err
    return plt


def _first_installed(font_manager: Any, preferred: Sequence[str]) -> str | None:
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in preferred if name in installed), None)


def cjk_font_name(preferred: Sequence[str] = CJK_FONTS) -> str | None:
    """Return the first family of ``preferred`` that is installed, or ``None``; change nothing.

    Fonts installed after matplotlib built its font cache are found too (the system font
    folders are rescanned for files the cache lacks).
    """
    _pyplot()
    from matplotlib import font_manager

    family = _first_installed(font_manager, preferred)
    if family is None:
        # matplotlib caches its font list; fonts installed after the cache was built are
        # only found by a rescan of the system folders (adding just the files it lacks)
        known = {f.fname for f in font_manager.fontManager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError) as err:
                    logger.debug("font %s not usable: %s", path, err)
        family = _first_installed(font_manager, preferred)
    return family


def use_cjk_font(preferred: Sequence[str] = CJK_FONTS) -> str | None:
    """Make matplotlib draw Chinese text with an installed CJK font; return its family name.

    The first family of ``preferred`` that matplotlib's font manager knows is put first in
    ``rcParams["font.sans-serif"]`` (and ``font.family`` set to ``sans-serif``); the minus sign
    is drawn as ASCII so CJK fonts without U+2212 still show it. Fonts installed after
    matplotlib built its font cache are found too. Returns ``None``, leaving the settings alone,
    when none is installed (Chinese labels then show as boxes).
    """
    import matplotlib as mpl

    family = cjk_font_name(preferred)
    if family is None:
        logger.warning("no CJK font found among %s; Chinese labels will not render. "
                       "Install one, e.g. `apt-get install fonts-noto-cjk`.", list(preferred))
        return None
    current = [f for f in mpl.rcParams["font.sans-serif"] if f != family]
    mpl.rcParams["font.sans-serif"] = [family, *current]
    mpl.rcParams["font.family"] = "sans-serif"
    mpl.rcParams["axes.unicode_minus"] = False
    logger.info("matplotlib uses %s for Chinese text", family)
    return family


def _axes(ax: Axes | None, n_rows: int) -> Axes:
    if ax is not None:
        return ax
    plt = _pyplot()
    _, new = plt.subplots(figsize=(8.5, max(3.0, 0.32 * n_rows + 1.4)), layout="constrained")
    return new


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    require_columns(frame.columns, columns, source_name=name)


def _township_code(table: pd.DataFrame, township: str | None) -> str | None:
    return None if township is None else township_code(table, township)


def _target_line(ax: Axes, value: float, label: str) -> None:
    if np.isfinite(value):
        ax.axvline(value * 100, color="#c92a2a", linestyle="--", linewidth=1.2, zorder=3,
                   label=label)


def _legend_below(ax: Axes, handles: list[Any] | None = None) -> None:
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    fig = ax.get_figure()
    # one chart per figure: legend under it; several (e.g. a grid of rankings): one per axes
    if (fig is not None and len(fig.axes) == 1
            and isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)):
        fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False,
                   fontsize=9)
    else:
        ax.legend(handles=handles, loc="lower right", fontsize=9, framealpha=0.9)


def ranking_chart(service_audit: Any, *, township: str | None = None,
                  ax: Axes | None = None) -> Axes:
    """Draw the townships ranked by the share of their villages/communities that pass.

    One horizontal bar per township (best on top) with ``passing/judged`` at its end, green
    where the township meets the plan's target, orange where it does not (grey without a
    target), the target as a dashed line, and ``township`` (name or code) highlighted.

    Parameters
    ----------
    service_audit
        A :class:`qyx_geo.audit.ServiceAudit`.
    township
        Township to highlight.
    ax
        Axes to draw on (default: a new figure sized to the number of townships).

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = service_audit.townships
    _require(table, ("name", "units_judged", "units_passing", "share_passing"),
             "service_audit.townships")
    code = _township_code(table, township)
    data = table[table["units_judged"] > 0]
    order = ["rank", "name"] if "rank" in data.columns else ["share_passing", "units_passing"]
    # barh draws bottom-up: the best township (rank 1) goes last, i.e. on top
    data = data.sort_values(order, ascending=[False, False] if "rank" in data.columns
                            else [True, True], na_position="first", kind="stable")
    ax = _axes(ax, len(data))
    target = service_audit.county.get("target")
    value = float(getattr(target, "value", np.nan))
    share = data["share_passing"].astype(float).to_numpy() * 100
    if np.isfinite(value):
        colours = [_PASS if s >= value * 100 - 1e-9 else _FAIL for s in share]
    else:
        colours = [_BEFORE] * len(data)
    pos = np.arange(len(data))
    bars = ax.barh(pos, share, color=colours, zorder=2)
    ranks = data["rank"] if "rank" in data.columns else pd.Series(pd.NA, index=data.index)
    labels = [name if pd.isna(r) else f"{int(r)}. {name}"
              for name, r in zip(data["name"].astype(str), ranks, strict=True)]
    ax.set_yticks(pos, labels)
    for bar, (idx, row) in zip(bars, data.iterrows(), strict=True):
        ax.annotate(f"{int(row['units_passing'])}/{int(row['units_judged'])}",
                    xy=(bar.get_width(), bar.get_y() + bar.get_height() / 2),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        if idx == code:
            bar.set_edgecolor(_HIGHLIGHT)
            bar.set_linewidth(2.5)
    if code is not None:
        for tick, idx in zip(ax.get_yticklabels(), data.index, strict=True):
            if idx == code:
                tick.set_color(_HIGHLIGHT)  # colour, not bold: many CJK fonts have no bold face
    svc = service_audit.service
    if np.isfinite(value):
        from matplotlib.patches import Patch

        _target_line(ax, value, f"{service_audit.year}年目标 target {value:.0%}")
        line = ax.get_lines()[-1]
        _legend_below(ax, [Patch(color=_PASS, label="达到目标 meets target"),
                           Patch(color=_FAIL, label="未达目标 below target"), line])
    county = service_audit.county
    ax.set_xlim(0, 112)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("达标村（社区）占比 / share of villages & communities passing (%)")
    ax.set_title(f"{svc.label_zh}{service_audit.threshold_minutes:g}分钟服务圈 各镇街排名 "
                 f"({service_audit.year})\n{svc.label_en}: township ranking — county "
                 f"{county['units_passing']}/{county['units_judged']} "
                 f"({county['share_passing']:.0%})", fontsize=11)
    ax.grid(axis="x", color="#dee2e6", zorder=0)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def comparison_chart(comparison: pd.DataFrame, *, title: str | None = None,
                     only_changed: bool = False, ax: Axes | None = None) -> Axes:
    """Draw a before/after comparison of :func:`qyx_geo.scenario.compare_audits` per township.

    Two bars per township (grey: before, blue: after) of the share of villages/communities
    passing, the county row last, the plan's target as a dashed line and, at the end of each
    row, the share after (and for changed rows the share before and the change in units).

    Parameters
    ----------
    comparison
        ``compare_audits(before, after)`` (``by="township"``).
    title
        Chart title (default: a generic before/after title).
    only_changed
        Draw only the townships whose number of passing units changed (and the county).
    ax
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    _require(comparison, ("name", "share_passing_before", "share_passing_after", "change"),
             "comparison")
    data = comparison
    if only_changed:
        keep = (data["change"] != 0) | (data.index == "county")
        data = data[keep.to_numpy()]
    data = data.iloc[::-1]  # barh draws bottom-up: keep the table's order top-down
    ax = _axes(ax, int(len(data) * 1.5))
    pos = np.arange(len(data))
    h = 0.38
    before = data["share_passing_before"].astype(float).to_numpy() * 100
    after = data["share_passing_after"].astype(float).to_numpy() * 100
    ax.barh(pos + h / 2, before, height=h, color=_BEFORE, label="调整前 before", zorder=2)
    ax.barh(pos - h / 2, after, height=h, color=_HIGHLIGHT, label="调整后 after", zorder=2)
    for y, b, a, change in zip(pos, before, after, data["change"].to_numpy(), strict=True):
        text = f"{a:.0f}%"
        if change:
            text = f"{b:.1f}% → {a:.1f}%（{int(change):+d} 个村社 units）"
        ax.annotate(text, xy=(a, y - h / 2), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=8,
                    color=_FAIL if change < 0 else _HIGHLIGHT if change else "#495057")
    ax.set_yticks(pos, data["name"].astype(str).tolist())
    target = float(data["target"].iloc[0]) if "target" in data.columns and len(data) else np.nan
    if np.isfinite(target):
        _target_line(ax, target, f"目标 target {target:.0%}")
    ax.set_xlim(0, 125)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("达标村（社区）占比 / share of villages & communities passing (%)")
    ax.set_title(title or "调整前后对比 / before and after", fontsize=11)
    _legend_below(ax)
    ax.grid(axis="x", color="#dee2e6", zorder=0)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def access_curves(result: Any, *, township: str | None = None, max_minutes: float = 30.0,
                  ax: Axes | None = None) -> Axes:
    """Draw, per service, the share of residents who reach a facility within x minutes.

    Each curve is the cumulative share of the service's demand group (all residents, children
    aged 0–3, people over 60) by travel time to the nearest facility, for ``township`` or the
    whole county, counting the residents of the units the service is judged in (sports grounds:
    administrative villages), as the audit does; the 15-minute threshold is marked. A curve
    that crosses the threshold line low means many residents beyond the circle; its tail shows
    how far they are.

    Parameters
    ----------
    result
        A :class:`qyx_geo.audit.AuditResult`.
    township
        Township name or 9-digit code (default: the whole county).
    max_minutes
        Right end of the time axis.
    ax
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(max_minutes, int | float) or not max_minutes > 0:
        msg = f"max_minutes must be a positive number of minutes, got {max_minutes!r}."
        raise SettingsError(msg)
    services = list(result.services.values())
    if not services:
        msg = "result has no audited services; run run_audit(..., services=[...]) first."
        raise SettingsError(msg)
    code = _township_code(services[0].townships, township)
    if ax is None:
        plt = _pyplot()
        _, ax = plt.subplots(figsize=(8.5, 4.8), layout="constrained")
    grid = np.linspace(0.0, float(max_minutes), 301)
    thresholds = set()
    for sa in services:
        judged = sa.units.index[sa.units["judged"].astype(bool)]
        pts = sa.points[sa.points["unit_code"].isin(judged)]  # as the audit counts them
        if code is not None:
            pts = pts[pts["township_code"].astype(str) == code]
        weights = pd.to_numeric(pts[sa.service.demand_column], errors="coerce").fillna(0.0)
        minutes = pd.to_numeric(pts["minutes"], errors="coerce").fillna(np.inf).to_numpy()
        total = float(weights.sum())
        if not total > 0:
            continue
        order = np.argsort(minutes, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(weights.to_numpy()[order])]) / total
        # a step curve: the share with minutes <= t (unreachable residents, inf, never join)
        share = cum[np.searchsorted(minutes[order], grid + 1e-9, side="right")]
        within = float(weights[minutes <= sa.threshold_minutes + 1e-9].sum()) / total
        ax.plot(grid, share * 100, linewidth=2,
                label=f"{sa.service.label_zh} {sa.service.label_en} ({within:.0%})")
        thresholds.add(float(sa.threshold_minutes))
    for t in sorted(thresholds):
        ax.axvline(t, color="#495057", linestyle=":", linewidth=1.2)
        ax.annotate(f"{t:g} 分钟 min", xy=(t, 2), xytext=(3, 0), textcoords="offset points",
                    fontsize=9, color="#495057")
    place = services[0].townships.loc[code, "name"] if code is not None else "全市 county"
    ax.set_xlim(0, float(max_minutes))
    ax.set_ylim(0, 102)
    ax.set_xlabel("到最近设施的步行时间 / walking time to the nearest facility (min)")
    ax.set_ylabel("可达居民占比 / residents reached (%)")
    ax.set_title(f"{place}：多少居民能在 x 分钟内到达设施 ({services[0].year})\n"
                 f"{place}: residents reaching a facility within x minutes", fontsize=11)
    ax.grid(color="#dee2e6")
    ax.legend(loc="lower right", fontsize=9, title="服务 service (15分钟内 within)",
              title_fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return ax
