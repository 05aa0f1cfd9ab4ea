"""Planner charts (qyx_geo.charts) and offline inline maps (qyx_geo.notebook), tiny county."""

from __future__ import annotations

import html
import re

import matplotlib as mpl
import pytest
from _audit_fixtures import grid_graph, tiny_dataset

from qyx_geo import charts
from qyx_geo._errors import SettingsError, UnknownCodeError
from qyx_geo.audit import run_audit
from qyx_geo.engine import build_arrays
from qyx_geo.notebook import InlineMap, inline_map
from qyx_geo.scenario import add_facilities, compare_audits, sites_at_gaps

mpl.use("Agg")
import matplotlib.pyplot as plt


@pytest.fixture(scope="module")
def result():
    return run_audit(tiny_dataset(), year=2027, network=build_arrays(grid_graph()))


@pytest.fixture(autouse=True)
def _close_figures():
    with mpl.rc_context():
        yield
    plt.close("all")


def _labels(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


def test_ranking_chart_orders_townships_and_marks_target(result):
    sa = result.services["canteen"]
    ax = charts.ranking_chart(sa, township="二镇")
    towns = sa.townships.sort_values("rank")
    # barh draws bottom-up: the best-ranked township is the last tick (top of the chart)
    want = [f"{int(r)}. {n}" for n, r in zip(towns["name"], towns["rank"], strict=True)]
    assert _labels(ax)[::-1] == want
    widths = [b.get_width() for b in ax.patches]
    assert sorted(widths) == sorted((towns["share_passing"] * 100).tolist())
    target = sa.county["target"].value * 100
    assert any(line.get_xdata()[0] == pytest.approx(target) for line in ax.get_lines())
    highlighted = [t.get_text() for t in ax.get_yticklabels() if t.get_color() != "black"]
    assert len(highlighted) == 1 and highlighted[0].endswith("二镇")
    assert "老年助餐" in ax.get_title() and "2027" in ax.get_title()
    with pytest.raises(UnknownCodeError, match="'三镇'"):
        charts.ranking_chart(sa, township="三镇")


def test_comparison_chart_shows_before_and_after(result):
    sa = result.services["canteen"]
    layer = add_facilities(sa.facilities, sites_at_gaps(sa))
    after = run_audit(result.dataset, year=2027, services=["canteen"], network=result.net,
                      facilities={"canteen": layer}).services["canteen"]
    table = compare_audits(sa, after)
    ax = charts.comparison_chart(table, title="测试")
    assert _labels(ax)[::-1] == table["name"].tolist()
    assert len(ax.patches) == 2 * len(table)
    changed = charts.comparison_chart(table, only_changed=True)
    keep = table[(table["change"] != 0) | (table.index == "county")]
    assert _labels(changed)[::-1] == keep["name"].tolist()
    texts = [t.get_text() for t in changed.texts]
    assert any("→" in t and "+" in t for t in texts)
    with pytest.raises(Exception, match="missing required column"):
        charts.comparison_chart(table.drop(columns=["change"]))


def test_access_curves_end_at_reachable_share(result):
    ax = charts.access_curves(result, max_minutes=60)
    assert len(ax.get_lines()) >= len(result.services)
    for sa, line in zip(result.services.values(), ax.get_lines(), strict=False):
        x, y = line.get_data()
        assert y[0] >= 0 and (y[1:] >= y[:-1] - 1e-9).all() and y[-1] <= 100 + 1e-9
        within = sa.county["residents_within_share"] * 100
        i = (abs(x - sa.threshold_minutes)).argmin()
        assert y[i] == pytest.approx(within, abs=2.0), sa.service.id
    town = charts.access_curves(result, township="一街道")
    assert "一街道" in town.get_title()
    with pytest.raises(SettingsError, match="max_minutes"):
        charts.access_curves(result, max_minutes=0)


def test_use_cjk_font_sets_an_installed_family_or_leaves_settings():
    before = list(mpl.rcParams["font.sans-serif"])
    family = charts.use_cjk_font()
    if family is None:
        assert mpl.rcParams["font.sans-serif"] == before
    else:
        assert mpl.rcParams["font.sans-serif"][0] == family
        assert family == charts.cjk_font_name()
    assert charts.use_cjk_font(["No Such Font 123"]) is None


def test_inline_map_is_offline_html(result):
    from qyx_geo.maps import service_map

    sa = result.services["canteen"]
    shown = inline_map(service_map(sa, result.dataset), height_px=400)
    assert isinstance(shown, InlineMap)
    frame = shown._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and "height:400px" in frame
    page = html.unescape(frame.split('srcdoc="', 1)[1].split('" style=', 1)[0])
    assert page == shown.page
    assert not re.findall(r"<(?:script|link)\b[^>]*(?:src|href)=\"https?://", page)
    assert "L.map(" in page
    with pytest.raises(SettingsError, match=r"folium\.Map"):
        inline_map("<html>")
    with pytest.raises(SettingsError, match="height_px"):
        inline_map(service_map(sa, result.dataset), height_px=50)


def test_rankings_in_a_grid_get_one_legend_each(result):
    fig, axes = plt.subplots(2, 2, layout="constrained")
    for ax, sa in zip(axes.flat, result.services.values(), strict=True):
        charts.ranking_chart(sa, ax=ax)
    assert not fig.legends
    assert all(ax.get_legend() is not None for ax in axes.flat)
    single = charts.ranking_chart(result.services["canteen"])
    assert single.get_legend() is None and len(single.get_figure().legends) == 1
