"""Offline HTML maps: assertions on the rendered page (the browser test is test_maps_browser.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString

from qyx_geo import maps
from qyx_geo._errors import AssetError, ColumnError, SettingsError, UnknownCodeError
from qyx_geo.crs import wgs84_to_gcj02
from qyx_geo.maps._offline import (
    escape_text,
    external_urls,
    gcj02_offset_grid,
    render_offline_html,
)
from qyx_geo.maps._parts import GAODE_URL, OSM_URL, display_isochrone


def _load_toy():  # the fixture module lives beside the other map fixtures
    path = Path(__file__).parent / "fixtures" / "maps" / "toy.py"
    spec = importlib.util.spec_from_file_location("qyx_maps_toy", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


toy = _load_toy()
TILE_PREFIXES = (OSM_URL.split("{")[0], GAODE_URL.split("{")[0])


def js(text: str) -> str:
    """``text`` as it appears inside folium's JSON (ASCII escapes, HTML-safe)."""
    dumped = json.dumps(text)[1:-1]
    for ch, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("'", "\\u0027")):
        dumped = dumped.replace(ch, esc)
    return dumped


class _Loads(HTMLParser):
    """Collect every ``src``/``href`` attribute and every ``<link>`` tag of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "link":
            self.links.append(dict(attrs))


@pytest.fixture(scope="module")
def ds():
    return toy.toy_dataset()


@pytest.fixture(scope="module")
def audit(ds):
    return toy.toy_audit(ds)


@pytest.fixture(scope="module")
def page(ds, audit) -> str:
    m = maps.service_map(audit, ds, isochrones=toy.toy_isochrones(ds), roads=toy.toy_graph())
    return render_offline_html(m)


# ------------------------------------------------------------------------------ escaping


def test_escape_text_covers_html_and_template_literals():
    assert escape_text('<a href="x">${`b`}</a>') == (
        "&lt;a href=&quot;x&quot;&gt;&#36;{&#96;b&#96;}&lt;/a&gt;")
    assert escape_text(None) == ""
    assert escape_text(12) == "12"


def test_user_strings_are_escaped_in_the_page(page):
    assert toy.XSS not in page
    assert "onerror=alert(1)>" not in page
    assert "${alert(2)}" not in page
    assert "<script>alert(3)" not in page
    # the names are still there, as text
    assert js(escape_text(toy.XSS)) in page
    assert js(escape_text(toy.TEMPLATE_XSS)) in page


def test_township_names_are_escaped(ds, audit):
    townships = ds.townships.copy()
    townships.loc["330282100", "name"] = toy.XSS
    evil = dataclasses.replace(ds, townships=townships)
    html = render_offline_html(maps.service_map(audit, evil))
    assert toy.XSS not in html
    assert escape_text(toy.XSS) in html or js(escape_text(toy.XSS)) in html


# ------------------------------------------------------------------ template syntax in data

RUN = "Z{{ 7*7 }}Z"  # printed as Z49Z if run as a Jinja template
BRANCH = "Y{% if true %}x{% endif %}Y"  # printed as YxY if run


def test_template_syntax_in_user_text_is_printed_not_run(ds):
    units = ds.units.copy()
    units.iloc[1, units.columns.get_loc("name")] = f"村{RUN}{BRANCH}"
    townships = ds.townships.copy()
    townships.iloc[1, townships.columns.get_loc("name")] = f"镇{RUN}"
    facilities = ds.facilities["canteen"].copy()
    facilities.iloc[1, facilities.columns.get_loc("name")] = f"点{BRANCH}{RUN}"
    evil = dataclasses.replace(ds, units=units, townships=townships,
                               facilities={"canteen": facilities})
    audit = toy.toy_audit(evil)
    m = maps.service_map(audit, evil, title=f"标题{RUN}")
    folium.Marker([30.2, 121.3], tooltip=folium.Tooltip(RUN),
                  popup=folium.Popup(BRANCH)).add_to(m)
    page = render_offline_html(m)
    assert "Z49Z" not in page and "YxY" not in page
    assert js(escape_text(f"村{RUN}{BRANCH}")) in page  # village: tooltip property
    assert js(escape_text(f"点{BRANCH}{RUN}")) in page  # facility: tooltip and popup
    assert js(escape_text(f"镇{RUN}")) in page  # township label
    assert f"<h1>{escape_text(f'标题{RUN}')}</h1>" in page  # title
    assert RUN in page and BRANCH in page  # folium's own tooltip and popup


def test_plain_text_rendering_is_what_jinja_prints_for_plain_text():
    from jinja2 import Template

    from qyx_geo.maps._offline import literal_element

    for text in ("", "\n", "a", "a\n", "a\n\n", "a\r\nb\rc\r\n", "\r\n\r", " x \n "):
        assert literal_element(text).render() == Template(text).render(), repr(text)


def test_plain_text_only_in_the_rendering_thread():
    import threading

    import branca.element
    import jinja2
    from branca.element import Element

    from qyx_geo.maps._offline import _LITERAL_OUTPUT

    seen = []
    with _LITERAL_OUTPUT:
        assert Element("{{ 1 + 1 }}").render() == "{{ 1 + 1 }}"
        worker = threading.Thread(target=lambda: seen.append(Element("{{ 1 + 1 }}").render()))
        worker.start()
        worker.join()
    assert seen == ["2"]  # another thread's templates still run
    assert branca.element.Template is jinja2.Template  # put back


@pytest.mark.parametrize("which", ["service", "overview"])
def test_plain_text_rendering_changes_no_byte_of_a_page(ds, audit, which, monkeypatch):
    import copy

    from branca.element import Element

    from qyx_geo.maps import _offline

    if which == "service":
        m = maps.service_map(audit, ds, isochrones=toy.toy_isochrones(ds), roads=toy.toy_graph(),
                             tiles="gaode")
    else:
        m = maps.overview_map(toy.ToyResult(2027, {"canteen": audit}, ds), roads=toy.toy_graph())
    folium.Marker([30.2, 121.3], icon=folium.Icon(icon="info", prefix="fa"),
                  popup=folium.Popup("<b>hi</b>")).add_to(m)
    ours, theirs, offline_old = (copy.deepcopy(m) for _ in range(3))
    # branca's own rendering of the same map (ids are fixed at construction)
    assert _offline.render_literal(ours.get_root()) == theirs.get_root().render()
    # and the offline page as it was rendered before (every text compiled as a template)
    page = render_offline_html(m)
    monkeypatch.setattr(_offline, "literal_element", Element)
    monkeypatch.setattr(_offline, "render_literal", lambda el: el.render())
    assert render_offline_html(offline_old) == page


# ---------------------------------------------------------------------------- offline


def test_page_loads_nothing_from_the_network(page):
    parser = _Loads()
    parser.feed(page)
    assert [u for u in parser.urls if re.match(r"(?i)(https?:)?//", u)] == []
    assert parser.links == []  # every style is inline
    assert external_urls(page, allow=TILE_PREFIXES) == []
    assert "cdn.jsdelivr" not in page and "cdnjs" not in page and "code.jquery" not in page
    assert "L.tileLayer(" in page  # the optional online layers exist ...
    for var in re.findall(r"var (tile_layer_\w+) = L\.tileLayer\(", page):
        assert f"{var}.addTo(" not in page  # ... but are off by default


def test_external_urls_finds_what_the_case_insensitive_pattern_finds(page):
    reference = re.compile(  # the pattern as first written; the module spells it out for speed
        r"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?|@import\s+["'])\s*"""
        r"""((?:https?:)?//[^"')\s>]+)""", re.IGNORECASE)
    cases = ['<img SRC = "//a/x">', 'xsrc="//b"', "HrEf='https://c/d'", 'url( "HTTP://e" )',
             "@IMPORT 'http://f'", "@import url(//g)", "src=\n\t//h", "ésrc=//i", "_src=//j",
             "9href=//k", "href= https://l", "\u017frc=//m", "@\u0130mport '//n'",
             "@\u0131mport '//o'", "srcsrc=//p", "src=src=//q", "src", "url(", "//r",
             "hsrc=//s href=//t", "a src=x//u", f"{page[:5000]} src='//v'"]
    for text in [*cases, " ".join(cases), page]:
        assert external_urls(text) == [m.group(1) for m in reference.finditer(text)
                                       if not m.group(1).startswith("https://leafletjs.com")]


def test_leaflet_is_inlined_and_only_what_is_needed(page):
    assert "Leaflet 1.9.3" in page or "leaflet/leaflet.js" in page
    assert ".leaflet-pane" in page  # leaflet.css
    assert "jQuery v3.7.1" not in page  # no folium.Popup on our maps
    assert "Font Awesome" not in page
    assert "sourceMappingURL" not in page


def test_icons_and_popups_pull_in_their_vendored_assets():
    m = folium.Map(location=[30.2, 121.3], zoom_start=12, tiles=None)
    folium.Marker([30.2, 121.3], icon=folium.Icon(icon="info", prefix="fa"),
                  popup=folium.Popup("hi")).add_to(m)
    m.get_root().render()  # a plain render leaves CDN links in the header
    html = render_offline_html(m)
    assert external_urls(html) == []
    assert "jQuery v3.7.1" in html
    assert "L.AwesomeMarkers" in html
    assert "data:font/woff2;base64," in html
    assert "data:image/png;base64," in html


def test_rendering_leaves_the_map_untouched():
    m = folium.Map(tiles=None)
    first = render_offline_html(m)
    assert "default_js" not in m.__dict__
    assert len(render_offline_html(m)) == len(first)
    assert "cdn.jsdelivr.net/npm/leaflet" in m.get_root().render()


def test_unvendored_plugin_is_refused_and_nothing_written(tmp_path):
    from folium.plugins import Fullscreen

    m = folium.Map(tiles=None)
    Fullscreen().add_to(m)
    with pytest.raises(AssetError, match="not vendored"):
        maps.save_map(m, tmp_path / "x.html")
    assert list(tmp_path.iterdir()) == []


def test_bad_assets_option():
    with pytest.raises(SettingsError, match="'auto' or 'all'"):
        render_offline_html(folium.Map(tiles=None), assets="some")


def test_vendored_assets_have_licences_and_match_the_readme():
    root = Path(maps.__file__).parent / "_assets"
    readme = (root / "README.md").read_text(encoding="utf-8")
    for folder, version, marker in (
            ("leaflet", "1.9.3", ("leaflet.js", '"1.9.3"')),
            ("jquery", "3.7.1", ("jquery.min.js", "v3.7.1")),
            ("bootstrap", "5.2.2", ("bootstrap.bundle.min.js", "v5.2.2")),
            ("leaflet.awesome-markers", "2.0.5", ("leaflet.awesome-markers.js", "AwesomeMarkers")),
            ("fontawesome-free", "6.2.0", ("css/all.min.css", "6.2.0"))):
        assert any((root / folder).glob("LICENSE*")), folder
        assert f"| {version} |" in readme and f"`{folder}/`" in readme
        assert marker[1] in (root / folder / marker[0]).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ content


@pytest.mark.parametrize(("min_share", "marked", "unmarked"), [
    (0.8, ["80%–100% ✓", "≥80% 达标 passes"], ["60%–80% ✓", "% (≥"]),
    (0.9, ["80%–100% (≥90% ✓)", "≥90% 达标 passes"], ["80%–100% ✓"]),
    (0.6, ["60%–80% ✓", "80%–100% ✓"], ["40%–60% ✓"]),
    (0.5, ["40%–60% (≥50% ✓)", "60%–80% ✓"], ["20%–40% ✓"]),
])
def test_legend_pass_mark_follows_min_share(ds, audit, min_share, marked, unmarked):
    from qyx_geo.maps._parts import share_classes

    labels = " ".join(label for _, label in share_classes(min_share))  # printed maps' legend too
    assert all(t in labels for t in marked if "达标" not in t)
    # before: the legend marked 80 %-100 % whatever --min-share was
    page = maps.service_map(dataclasses.replace(audit, min_share=min_share), ds) \
        .get_root().render()
    for text in marked:
        assert text in page, text
    for text in unmarked:
        assert text not in page, text


def test_layers_legend_title_and_notice(page):
    for name in ("离线矢量底图 Vector basemap (offline)", "OpenStreetMap (在线 online)",
                 "高德地图 Gaode (在线 online, GCJ-02)", "镇街边界与名称 Townships",
                 "村社覆盖率 Coverage (老年助餐, ≤15分钟)",
                 "5分钟可达范围 Elderly canteen within 5 min",
                 "10分钟可达范围 Elderly canteen within 10 min",
                 "15分钟可达范围 Elderly canteen within 15 min",
                 "老年助餐设施 Elderly canteen facilities (3)",
                 "未覆盖居民点 Residents beyond 15 min (460人)"):
        assert f'"{js(name)}" :' in page, name
    assert 'id="qyx-legend"' in page and "15分钟内居民比例 Share within" in page
    assert "80%–100% ✓" in page and "不考核 not judged" in page
    assert 'id="qyx-title"' in page and "<title>toy · 老年助餐15分钟服务圈 · 2027年</title>" in page
    assert "达标村社 Units passing: 2/3 (67%)" in page
    assert "全市目标 Target 80%" in page and "差1个村社" in page
    assert 'id="qyx-synthetic-notice"' in page
    assert "合成数据 — 非真实设施 / Synthetic data — not real facilities" in page
    assert "L.control.layers(" in page and "L.control.scale(" in page


def test_tooltips_and_popups_carry_the_unit_and_facility_facts(page):
    for text in ("95%", "50%", "4.2 分钟", "不考核 n/a", "达标 ✓ pass", "未达标 ✗ fail",
                 "60岁以上人口 Age 60+", "村级", "30 座位", "synthetic", "白沙助餐点",
                 "最近设施 Nearest", "不可达"):
        assert js(text) in page, text


def test_no_notice_when_nothing_is_synthetic():
    ds = toy.toy_dataset(synthetic=False)
    html = render_offline_html(maps.service_map(toy.toy_audit(ds), ds))
    assert 'id="qyx-synthetic-notice"' not in html


def test_township_filter(ds, audit):
    html = render_offline_html(maps.service_map(audit, ds, township="观海卫镇"))
    assert js("观海2村") in html and js("白沙2村") not in html
    assert "观海卫镇 · 老年助餐15分钟服务圈" in html
    by_code = render_offline_html(maps.service_map(audit, ds, township="330282100"))
    assert js("白沙2村") not in by_code
    with pytest.raises(UnknownCodeError, match="白沙路街道"):
        maps.service_map(audit, ds, township="宗汉街道")


def test_tiles_option(ds, audit):
    with pytest.raises(SettingsError, match="tiles must be one of"):
        maps.service_map(audit, ds, tiles="google")
    html = render_offline_html(maps.service_map(audit, ds, tiles="gaode"))
    var = re.search(r"var (tile_layer_\w+) = L\.tileLayer\(\s*\"https://webrd", html).group(1)
    assert f"{var}.addTo(" in html


def test_overview_counts_services_passed(ds, audit):
    result = toy.ToyResult(2027, {"canteen": audit}, ds)
    html = render_offline_html(maps.overview_map(result))
    assert "15分钟公共服务圈总览 · 2027年" in html
    assert js("1/1") in html and js("0/0") in html  # passing unit, unit not judged
    assert js("✓ 95%") in html and js("✗ 50%") in html
    assert 'id="qyx-synthetic-notice"' in html


def test_display_geometry_is_simplified_and_rounded(page):
    coords = re.findall(r"\[(1\d\d\.\d+), (\d\d\.\d+)\]", page)
    assert coords
    assert max(len(x.split(".")[1]) for x, _ in coords) <= 5
    assert len(page) < 300_000


# ------------------------------------------------------------------------------- roads


def test_main_roads_from_graph_keeps_main_classes():
    roads = maps.main_roads(toy.toy_graph())
    assert roads.crs == "EPSG:4326"
    assert set(roads["highway"]) == {"primary", "secondary", "tertiary"}
    primary = roads[roads["highway"] == "primary"].to_crs("EPSG:4549").length.sum()
    assert primary > 5_000  # the primary edge plus its _link, merged
    footway = LineString([(121.29, 30.239), (121.27, 30.23)])
    assert not roads.intersects(footway.buffer(1e-6).difference(
        roads[roads["highway"] != "x"].union_all().buffer(1e-6))).any()


def test_main_roads_from_projected_graph_and_edges():
    g = toy.toy_grid_graph()
    roads = maps.main_roads(g)
    assert set(roads["highway"]) == {"primary", "secondary", "tertiary"}
    x0, y0, x1, y1 = roads.total_bounds
    assert 121.24 < x0 < x1 < 121.34 and 30.19 < y0 < y1 < 30.25
    edges = maps._graph_edges(g)
    assert set(maps.main_roads(edges)["highway"]) == set(roads["highway"])


def test_main_roads_errors():
    with pytest.raises(ColumnError, match="'highway'"):
        maps.main_roads(gpd.GeoDataFrame(geometry=[LineString([(0, 0), (1, 1)])], crs=4326))
    with pytest.raises(SettingsError, match="no CRS"):
        maps.main_roads(gpd.GeoDataFrame({"highway": ["primary"]},
                                         geometry=[LineString([(0, 0), (1, 1)])]))
    with pytest.raises(TypeError, match="osmnx graph"):
        maps.main_roads([1, 2])


# -------------------------------------------------------------------------------- GCJ-02


def test_gcj_grid_in_the_page_is_the_crs_module_offset(page, ds):
    call = re.search(r"qyxGcjShift\(map_\w+, \[(tile_layer_\w+)\], (\{.*?\})\);", page)
    assert call, "the GCJ-02 shift must be wired to the Gaode layer"
    gaode_var = re.search(r"var (tile_layer_\w+) = L\.tileLayer\(\s*\"https://webrd", page)
    assert call.group(1) == gaode_var.group(1)
    grid = json.loads(call.group(2))
    x0, y0, x1, y1 = ds.outline.total_bounds
    assert grid["lon0"] <= x0 and grid["lat0"] <= y0
    assert grid["lon0"] + (grid["nx"] - 1) * grid["step"] >= x1
    assert grid["lat0"] + (grid["ny"] - 1) * grid["step"] >= y1
    lon = grid["lon0"] + np.arange(grid["nx"]) * grid["step"]
    lat = grid["lat0"] + np.arange(grid["ny"]) * grid["step"]
    glon, glat = np.meshgrid(lon, lat)
    slon, slat = wgs84_to_gcj02(glon.ravel(), glat.ravel())
    np.testing.assert_allclose(grid["dlon"], slon - glon.ravel(), atol=2e-8)
    np.testing.assert_allclose(grid["dlat"], slat - glat.ravel(), atol=2e-8)


def test_gcj_grid_interpolates_to_below_a_metre():
    # Cixi municipal government, WGS84: the bilinear offset of the page's grid vs E's exact one
    lon, lat = 121.2665, 30.1698
    grid = gcj02_offset_grid((121.0, 30.0, 121.7, 30.5))
    fx, fy = (lon - grid["lon0"]) / grid["step"], (lat - grid["lat0"]) / grid["step"]
    ix, iy = int(fx), int(fy)
    tx, ty = fx - ix, fy - iy

    def at(values):
        v = np.asarray(values).reshape(grid["ny"], grid["nx"])
        return ((v[iy, ix] * (1 - tx) + v[iy, ix + 1] * tx) * (1 - ty)
                + (v[iy + 1, ix] * (1 - tx) + v[iy + 1, ix + 1] * tx) * ty)

    exact = np.subtract(wgs84_to_gcj02(lon, lat), (lon, lat))
    assert 0.004 < exact[0] < 0.006 and -0.003 < exact[1] < -0.001  # ~+450 m E, ~-250 m N
    err_m = np.hypot((at(grid["dlon"]) - exact[0]) * 96_000,
                     (at(grid["dlat"]) - exact[1]) * 111_000)
    assert err_m < 0.5


# ------------------------------------------------------------------------------- writing


def test_write_audit_maps_writes_overview_and_services(tmp_path, ds, audit):
    result = toy.ToyResult(2027, {"canteen": audit}, ds)
    paths = maps.write_audit_maps(result, tmp_path / "maps",
                                  isochrones={"canteen": toy.toy_isochrones(ds)},
                                  roads=toy.toy_graph())
    assert [p.name for p in paths] == ["overview.html", "canteen.html"]
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["canteen.html",
                                                                      "overview.html"]
    for p in paths:
        html = p.read_text(encoding="utf-8")
        assert 'id="qyx-synthetic-notice"' in html
        assert external_urls(html, allow=TILE_PREFIXES) == []
    with pytest.raises(SettingsError, match="not in the audit result"):
        maps.write_audit_maps(result, tmp_path, services=["clinic"])


def _same_ids(page: str) -> str:
    """``page`` with folium's random element ids numbered in order of appearance."""
    ids: dict[str, str] = {}
    return re.sub(r"[0-9a-f]{32}", lambda m: ids.setdefault(m.group(0), f"id{len(ids)}"), page)


def test_basemap_is_built_once_per_run_and_draws_the_same(tmp_path, ds, audit, monkeypatch):
    built = []
    real = maps.basemap_layers
    monkeypatch.setattr(maps, "basemap_layers", lambda *a, **kw: built.append(1) or real(*a, **kw))
    result = toy.ToyResult(2027, {"canteen": audit}, ds)
    paths = maps.write_audit_maps(result, tmp_path, isochrones=False, roads=toy.toy_graph(),
                                  township="观海卫镇")
    assert len(paths) == 2 and built == [1]  # overview and canteen
    # a map drawn on shared layers is the map drawn on its own
    roads = maps.main_roads(toy.toy_graph())
    layers = real(ds, roads=roads, township="330282100")
    own = maps.service_map(audit, ds, roads=roads, township="330282100")
    shared = maps.service_map(audit, ds, roads=None, township="330282100", basemap=layers)
    assert _same_ids(render_offline_html(shared)) == _same_ids(render_offline_html(own))
    assert layers.township == "330282100"
    assert [name for name, _, _ in layers.labels] == list(ds.townships["name"])
    with pytest.raises(SettingsError, match="highlight township '330282100'"):
        maps.service_map(audit, ds, basemap=layers)


def test_failed_write_leaves_no_file(tmp_path, ds, audit, monkeypatch):
    target = tmp_path / "canteen.html"
    target.write_text("old", encoding="utf-8")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(maps._io, "atomic_write_text", boom)
    with pytest.raises(RuntimeError):
        maps.save_map(maps.service_map(audit, ds), target)
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["canteen.html"]


def _toy_canteen_by_hand(ds, graph, *, reach_m: float,
                         min_share: float) -> tuple[dict[str, bool], int]:
    """Which toy units pass the canteen, computed without qyx_geo's engine.

    Each point is put on its nearest grid edge (shapely distances over every edge), and its
    network distance to a facility is the snap lengths plus the along-edge offsets plus the
    networkx shortest path between the edges' ends (or the offset difference on one edge).
    A unit passes when at least ``min_share`` of its residents aged 60+ are within ``reach_m``.
    """
    import networkx as nx
    import shapely

    g = nx.Graph()
    for u, v, d in graph.edges(data=True):
        g.add_edge(u, v, length=d["length"])
    nodes = {n: (d["x"], d["y"]) for n, d in graph.nodes(data=True)}
    edges = list(g.edges())
    lines = shapely.linestrings([[nodes[u], nodes[v]] for u, v in edges])

    def place(gdf):
        pts = gdf.to_crs("EPSG:4549").geometry.to_numpy()
        out = []
        for p in pts:
            k = int(np.argmin(shapely.distance(lines, p)))
            u, v = edges[k]
            along = float(shapely.line_locate_point(lines[k], p))
            length = g.edges[u, v]["length"]
            out.append((k, {u: along, v: length - along}, float(shapely.distance(lines[k], p))))
        return out

    facs = place(ds.facilities["canteen"])
    homes = place(ds.demand)
    ends = {n for _, off, _ in facs for n in off}
    dist = {n: nx.single_source_dijkstra_path_length(g, n, weight="length") for n in ends}
    reach = []
    for k, off, snap in homes:
        best = np.inf
        for fk, foff, fsnap in facs:
            if fk == k:  # same edge: walk along it
                (a, ta), _ = foff.items()
                best = min(best, fsnap + abs(ta - off[a]) + snap)
            for a, ta in foff.items():
                for b, tb in off.items():
                    best = min(best, fsnap + ta + dist[a][b] + tb + snap)
        reach.append(best <= reach_m + 1e-6)
    w = ds.demand["pop_60p"].to_numpy(float)
    within = pd.Series(w * np.array(reach), index=ds.demand.index)
    per_unit = pd.DataFrame({"unit": ds.demand["unit_code"], "w": w, "in": within})
    sums = per_unit.groupby("unit")[["w", "in"]].sum()
    passes = {code: bool(row["w"] > 0 and row["in"] >= min_share * row["w"] - 1e-9)
              for code, row in sums.reindex(ds.units.index).fillna(0).iterrows()}
    return passes, int((sums.reindex(ds.units.index).fillna(0)["w"] > 0).sum())


def test_real_audit_to_maps(tmp_path):
    from qyx_geo.audit import run_audit
    from qyx_geo.settings import Settings

    ds = toy.toy_audit_dataset()
    graph = toy.toy_grid_graph()
    # 30 minutes (2,000 m at 4 km/h) and 60 %: the toy then has passing and failing units
    settings = Settings(threshold_minutes={"canteen": 30}, min_share=0.6)
    result = run_audit(ds, year=2027, services=["canteen"], network=graph, settings=settings)
    paths = maps.write_audit_maps(result, tmp_path, roads=graph)
    html = paths[1].read_text(encoding="utf-8")
    for minutes in (5, 10, 15):
        assert js(f"{minutes}分钟可达范围 Elderly canteen within {minutes} min") in html
    assert html.count('"highway": "primary"') >= 1
    # the expectation comes from an independent computation, not from the audit under test
    passes, judged = _toy_canteen_by_hand(ds, graph, reach_m=2000.0, min_share=0.6)
    assert 0 < sum(passes.values()) < judged  # both kinds, so a swapped verdict shows
    assert result.services["canteen"].units["passes"].to_dict() == passes
    assert f"达标村社 Units passing: {sum(passes.values())}/{judged}" in html
    assert "60%–80% ✓" in html and "≥60% 达标 passes" in html  # the legend follows min_share


# ----------------------------------------------------------------------------------- CLI


def test_cli_map_writes_the_file(tmp_path, monkeypatch, capsys):
    from qyx_geo.cli import main
    from qyx_geo.dataset import Dataset

    t = toy.toy_audit_dataset()
    graph = toy.toy_grid_graph()
    dataset = Dataset(outline=t.outline, townships=t.townships, units=t.units, demand=t.demand,
                      facilities=t.facilities, network_path=None, provenance={},
                      data_dir=tmp_path, network=graph)
    monkeypatch.setattr("qyx_geo.dataset.load_dataset", lambda **_: dataset)
    out = tmp_path / "m.html"
    code = main(["map", "--service", "canteen", "--township", "观海卫镇", "--out", str(out),
                 "--tiles", "gaode"])
    assert code == 0
    html = out.read_text(encoding="utf-8")
    assert "观海卫镇 · 老年助餐15分钟服务圈 · 2027年" in html
    assert "map written" in capsys.readouterr().out
    assert main(["map", "--out", str(tmp_path / "o.html")]) == 0
    assert "15分钟公共服务圈总览" in (tmp_path / "o.html").read_text(encoding="utf-8")
    assert main(["map", "--service", "canteen", "--township", "无此镇",
                 "--out", str(tmp_path / "bad.html")]) == 2
    assert not (tmp_path / "bad.html").exists()
    assert "无此镇" in capsys.readouterr().err


def test_isochrone_display_fills_only_small_block_holes():
    from shapely.geometry import Polygon, box

    outer = box(0, 0, 1000, 1000)
    small, large = box(100, 100, 160, 160), box(400, 400, 700, 700)  # 0.36 ha, 9 ha
    band = Polygon(outer.exterior, [small.exterior, large.exterior])
    shown = display_isochrone(band, min_hole_m2=5_000, tolerance_m=10)
    assert shown.area == pytest.approx(outer.area - large.area)
    assert shown.contains(small.centroid) and not shown.contains(large.centroid)


def test_township_isochrones_use_only_facilities_that_can_reach_it(ds):
    from qyx_geo.cli.map import _near_facilities

    fac = ds.facilities["canteen"]
    # f2 lies ~1.9 km east of 观海卫镇's edge; f1, f3 inside
    assert list(_near_facilities(fac, ds.townships, "330282100", 1000.0).index) == ["f1", "f3"]
    assert len(_near_facilities(fac, ds.townships, "330282100", 2500.0)) == 3


def test_township_boundaries_are_drawn(ds):
    """Every township boundary reaches the page as a shape (all were null: index misaligned)."""
    from qyx_geo.maps._parts import basemap_layers

    code = str(ds.townships.index[0])
    layers = basemap_layers(ds, roads=None, township=code)
    features = json.loads(layers.townships)["features"]
    assert len(features) == len(ds.townships)
    assert all(f["geometry"] is not None and f["geometry"]["coordinates"] for f in features)
    assert [f["properties"]["_sel"] for f in features] == [
        str(c) == code for c in ds.townships.index]
