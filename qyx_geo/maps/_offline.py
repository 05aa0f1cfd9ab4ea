"""Self-contained folium HTML: vendored assets inlined, user text escaped, GCJ-02 overlay shift.

folium links Leaflet, jQuery, Bootstrap, Leaflet.awesome-markers and Font Awesome from CDNs.
Planners open our maps on offline intranets, so :func:`render_offline_html` replaces every such
link with the file vendored from its npm package under ``qyx_geo/maps/_assets`` (see its README for
packages, versions and licences) and rewrites ``url(...)`` references of the styles to ``data:``
URIs; :func:`qyx_geo.maps.save_map` then refuses to write a page that would load anything from
the network.

The page is rendered by :func:`render_literal`, which keeps what each element's template printed
as plain text: branca would otherwise compile it as a Jinja template and run it, so a village or
facility name such as ``{{ 7*7 }}`` would print ``49`` (template injection).

Only what the map needs is inlined (``assets="auto"``): Leaflet always; jQuery only when a
:class:`folium.Popup` (which builds its content with ``$(...)``) is present; Bootstrap,
awesome-markers and Font Awesome only when a :class:`folium.Icon` is. ``assets="all"`` inlines
folium's whole default set. Two of folium's defaults are not npm packages and are dropped:
Bootstrap 3's ``bootstrap-glyphicons.css`` (so ``Icon(prefix="glyphicon")`` draws no glyph —
use ``prefix="fa"``) and folium's own ``leaflet.awesome.rotate.css`` (``Icon(angle=...)``).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import mimetypes
import re
import threading
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from qyx_geo._errors import AssetError, SettingsError

if TYPE_CHECKING:
    import folium
    from branca.element import Element, MacroElement

__all__ = [
    "ASSETS",
    "GAODE_URL",
    "OSM_URL",
    "TILE_CHOICES",
    "AssetMode",
    "TileChoice",
    "escape_text",
    "external_urls",
    "gcj02_offset_grid",
    "gcj02_shift_element",
    "literal_element",
    "macro_element",
    "render_literal",
    "render_offline_html",
]

logger = logging.getLogger(__name__)

AssetMode = Literal["auto", "all"]

#: Base layers a map can open on: the offline vector basemap or an online tile source.
TileChoice = Literal["none", "osm", "gaode"]
TILE_CHOICES: tuple[str, ...] = get_args(TileChoice)
OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
#: Gaode (AMap) road map tiles; they are in GCJ-02, so overlays are shifted while shown.
GAODE_URL = ("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
             "&x={x}&y={y}&z={z}")

#: folium's asset names -> vendored file (relative to ``qyx_geo/maps/_assets``). ``None``: dropped.
ASSETS: dict[str, str | None] = {
    "leaflet": "leaflet/leaflet.js",
    "leaflet_css": "leaflet/leaflet.css",
    "jquery": "jquery/jquery.min.js",
    "bootstrap": "bootstrap/bootstrap.bundle.min.js",
    "bootstrap_css": "bootstrap/bootstrap.min.css",
    "awesome_markers": "leaflet.awesome-markers/leaflet.awesome-markers.js",
    "awesome_markers_css": "leaflet.awesome-markers/leaflet.awesome-markers.css",
    "awesome_markers_font_css": "fontawesome-free/css/all.min.css",
    "glyphicons_css": None,
    "awesome_rotate_css": None,
}

_ICON_ASSETS = frozenset({"bootstrap_css", "awesome_markers", "awesome_markers_css",
                          "awesome_markers_font_css"})
_URL_RE = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
_TTF_RE = re.compile(r""",\s*url\([^)]*\.ttf\)\s*format\(["']truetype["']\)""")
_SOURCE_MAP_RE = re.compile(r"^\s*(?://|/\*)# sourceMappingURL=.*$", re.MULTILINE)
#: What a page loads: ``(?i)(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?|@import\s+["'])\s*``
#: ``((?:https?:)?//[^"')\s>]+)``, spelled out in both cases (with the non-ASCII letters that
#: ``re.IGNORECASE`` also matches: ſ for s, İ and ı for i) and opening on one character class,
#: so that the scanner skips to candidate letters: ~4x faster on a 1.4 MB page, same matches.
_EXTERNAL_RE = re.compile(
    r"""[sSſhHuU@]"""
    r"""(?:(?<=[sSſ])(?<!\w[sSſ])[rR][cC]\s*=\s*["']?"""
    r"""|(?<=[hH])(?<!\w[hH])[rR][eE][fF]\s*=\s*["']?"""
    r"""|(?<=[uU])[rR][lL]\(\s*["']?"""
    r"""|(?<=@)[iIİı][mM][pP][oO][rR][tT]\s+["'])"""
    r"""\s*((?:[hH][tT][tT][pP][sSſ]?:)?//[^"')\s>]+)""")
#: Hyperlinks in the vendored code that a reader may click but the page never loads.
_LINKS_NOT_LOADS = ("https://leafletjs.com",)


def escape_text(value: object) -> str:
    """Return ``value`` as text that is safe inside HTML, attributes and JS template literals.

    Beyond :func:`html.escape` this also encodes the backtick and ``$``, since folium builds some
    HTML inside JavaScript template literals, where ```${...}``` would run as code.
    """
    text = "" if value is None else str(value)
    return html.escape(text, quote=True).replace("`", "&#96;").replace("$", "&#36;")


# ------------------------------------------------------------------------- plain-text rendering


class _PlainText:
    r"""Stands in for a Jinja template of ``source``: prints it, never runs it.

    It prints what Jinja prints for text without template syntax, byte for byte: line ends made
    ``\n`` and one final line end dropped (Jinja's defaults), so pages are unchanged.
    """

    __slots__ = ("text",)

    def __init__(self, source: str) -> None:
        if "\r" in source:
            source = source.replace("\r\n", "\n").replace("\r", "\n")
        self.text = source[:-1] if source.endswith("\n") else source

    def render(self, *args: Any, **kwargs: Any) -> str:
        return self.text


class _LiteralMacroOutput:
    """Context manager: while it is entered, ``Element(text)`` made in this thread is plain text.

    branca's ``MacroElement.render`` (and folium's ``Popup.render``, ``Class.render`` and the
    GeoJSON tooltip style) wrap what a template printed in ``Element(text)``, whose ``__init__``
    compiles ``text`` as a Jinja template that the page's render then runs: user text in a
    name, tooltip or GeoJSON property was executed, and compiling ~1,000 large strings per audit
    cost about a second. ``Element.__init__`` looks ``Template`` up in ``branca.element`` when it
    runs, so while entered that name points at a factory that returns :class:`_PlainText` for
    calls from a thread inside the block and a real template for any other thread. Entries
    are counted under a lock; the last one out puts jinja's ``Template`` back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._original: Any = None
        self._local = threading.local()

    def _factory(self, source: Any = None, *args: Any, **kwargs: Any) -> Any:
        if getattr(self._local, "depth", 0) and isinstance(source, str) and not args \
                and not kwargs:
            return _PlainText(source)
        return self._original(source, *args, **kwargs)

    def __enter__(self) -> None:
        import branca.element

        with self._lock:
            if self._users == 0:
                self._original = branca.element.Template
                branca.element.Template = self._factory  # type: ignore[assignment,misc]
            self._users += 1
        self._local.depth = getattr(self._local, "depth", 0) + 1

    def __exit__(self, *exc: object) -> None:
        import branca.element

        self._local.depth -= 1
        with self._lock:
            self._users -= 1
            if self._users == 0:
                branca.element.Template = self._original  # type: ignore[misc]


_LITERAL_OUTPUT = _LiteralMacroOutput()


def render_literal(element: Element) -> str:
    """Return ``element.render()`` with every template's output kept as plain text.

    Identical to branca's rendering, except that text a template printed (names, tooltips,
    GeoJSON) is never compiled and run as a template in its turn.
    """
    with _LITERAL_OUTPUT:
        return str(element.render())


def literal_element(text: str) -> Element:
    """Return a branca ``Element`` that prints ``text`` as it is (never run as a template)."""
    return _literal_class()(text)


@cache
def _literal_class() -> type[Element]:
    from branca.element import Element

    class LiteralElement(Element):
        # the text lives in an ordinary attribute: it survives copy.deepcopy, which drops
        # ``_template``
        def __init__(self, text: str) -> None:
            super().__init__()
            self._name = "LiteralElement"
            self.text = _PlainText(text).text

        def render(self, **kwargs: Any) -> str:
            return str(self.text)

    return LiteralElement


def macro_element(name: str, template: str) -> MacroElement:
    """Return a branca ``MacroElement`` named ``name`` whose macros are ``template``.

    The template is compiled once per process and held by the class, so copies of the element
    keep it. Values reach the page through ``{{ this.attribute }}``, which prints them without
    running them: user text in an attribute stays text.
    """
    el = _macro_class(template)()
    el._name = name
    return el


@cache
def _macro_class(template: str) -> type[MacroElement]:
    from branca.element import MacroElement
    from jinja2 import Template

    class QyxMacroElement(MacroElement):
        _template = Template(template)

    return QyxMacroElement


# ------------------------------------------------------------------------------------- assets


@cache
def _asset_text(relpath: str) -> str:
    """Return a vendored file's text, ``url(...)`` made ``data:`` URIs, source-map lines removed."""
    root = resources.files("qyx_geo.maps") / "_assets"
    node = root.joinpath(*relpath.split("/"))
    try:
        text = node.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        msg = (f"Vendored asset {relpath!r} is missing from qyx_geo/maps/_assets; reinstall "
               f"qyx_geo (the package data must be included).")
        raise AssetError(msg) from err
    text = _SOURCE_MAP_RE.sub("", text)
    if relpath.endswith(".css"):
        # woff2 is enough for every browser that runs Leaflet 1.9; drop the ttf fall-backs.
        text = _TTF_RE.sub("", text)
        base = relpath.rsplit("/", 1)[0].split("/")

        def to_data_uri(match: re.Match[str]) -> str:
            ref = match.group(2).strip()
            if ref.startswith(("data:", "#")):
                return match.group(0)
            parts = list(base)
            for piece in ref.split("?")[0].split("#")[0].split("/"):
                if piece == "..":
                    parts.pop()
                elif piece not in ("", "."):
                    parts.append(piece)
            target = root.joinpath(*parts)
            try:
                payload = target.read_bytes()
            except FileNotFoundError as err:
                msg = f"Style {relpath!r} refers to {ref!r}, which is not vendored."
                raise AssetError(msg) from err
            mime = mimetypes.guess_type(parts[-1])[0] or (
                "font/woff2" if parts[-1].endswith(".woff2") else "application/octet-stream")
            return f'url("data:{mime};base64,{base64.b64encode(payload).decode("ascii")}")'

        text = _URL_RE.sub(to_data_uri, text)
    return text


def _walk(element: Element) -> Iterator[Element]:
    yield element
    for child in element._children.values():
        yield from _walk(child)


def _needed(m: folium.Map, mode: AssetMode) -> set[str]:
    import folium

    if mode == "all":
        return set(ASSETS)
    need = {"leaflet", "leaflet_css"}
    for el in _walk(m):
        if isinstance(el, folium.Popup) or (isinstance(el, folium.Map)
                                            and el.objects_to_stay_in_front):
            need.add("jquery")
        if isinstance(el, folium.Icon):
            need |= _ICON_ASSETS
        if not isinstance(el, folium.Map):
            # plugins declare what they load; they get it all
            need |= {name for name, _ in (*getattr(el, "default_js", ()),
                                          *getattr(el, "default_css", ()))}
    return need


def render_offline_html(m: folium.Map, *, assets: AssetMode = "auto") -> str:
    """Render ``m`` to one self-contained HTML page with every script and style inlined.

    Parameters
    ----------
    m
        The map. It is not modified: a rendered copy is produced (folium renders in place, so
        the map's elements are re-pointed at inline assets only for the duration of the call).
    assets
        ``"auto"``: inline only what the map's elements need; ``"all"``: folium's whole default set.

    Returns
    -------
    str
        The HTML page. It loads nothing from the network except tile layers the map declares.

    Raises
    ------
    AssetError
        If an element needs a script or style that is not vendored.
    """
    if assets not in ("auto", "all"):
        msg = f"assets must be 'auto' or 'all', got {assets!r}."
        raise SettingsError(msg)
    need = _needed(m, assets)
    figure: Any = m.get_root()
    saved: list[tuple[Any, dict[str, Any]]] = []
    order: list[tuple[str, str]] = []
    try:
        el: Any
        for el in _walk(figure):
            declared: dict[str, Any] = {k: el.__dict__[k] for k in ("default_js", "default_css")
                        if k in el.__dict__}
            js, css = getattr(el, "default_js", None), getattr(el, "default_css", None)
            if js is None and css is None:
                continue
            saved.append((el, declared))
            for kind, pairs in (("js", js or ()), ("css", css or ())):
                for name, url in pairs:
                    if name not in ASSETS:
                        msg = (f"{type(el).__name__} needs {name!r} from {url!r}, which is not "
                               f"vendored in qyx_geo/maps/_assets; vendor it (npm pack) and add "
                               f"it to qyx_geo.maps._offline.ASSETS.")
                        raise AssetError(msg)
                    if (kind, name) not in order:
                        order.append((kind, name))
            el.default_js, el.default_css = [], []
        for key in list(figure.header._children):
            if key in ASSETS:  # CDN links left by an earlier plain render
                del figure.header._children[key]
        # scripts first (leaflet before its plugins), then styles, in folium's order
        for kind, name in sorted(order, key=lambda kn: kn[0] != "js"):
            relpath = ASSETS[name]
            if name not in need or relpath is None:
                if relpath is None and name in need:
                    logger.debug("folium asset %r has no npm package; left out", name)
                continue
            body = _asset_text(relpath)
            tag = (f"<script>/* {relpath} */\n{body}\n</script>" if kind == "js"
                   else f"<style>/* {relpath} */\n{body}\n</style>")
            figure.header.add_child(literal_element(tag), name=f"qyx_inline_{name}")
        if "leaflet" in need:
            figure.header.add_child(literal_element(_default_icon_script()),
                                    name="qyx_inline_icon")
        page = render_literal(figure)
    finally:
        for el, declared in saved:
            for key in ("default_js", "default_css"):
                if key in declared:
                    setattr(el, key, declared[key])
                else:
                    el.__dict__.pop(key, None)
        for key in list(figure.header._children):
            if key.startswith("qyx_inline_"):
                del figure.header._children[key]
    return page


def _default_icon_script() -> str:
    """Point Leaflet's default marker icon at data: URIs (it guesses a URL from the CSS)."""
    root = resources.files("qyx_geo.maps") / "_assets" / "leaflet" / "images"
    uris = {key: "data:image/png;base64," + base64.b64encode(
        root.joinpath(name).read_bytes()).decode("ascii")
        for key, name in (("iconUrl", "marker-icon.png"), ("iconRetinaUrl", "marker-icon-2x.png"),
                          ("shadowUrl", "marker-shadow.png"))}
    return ("<script>L.Icon.Default.imagePath = '';"
            f"L.Icon.Default.mergeOptions({json.dumps(uris)});</script>")


def external_urls(page: str, *, allow: tuple[str, ...] = ()) -> list[str]:
    """Return the network URLs that ``page`` would load (``src``/``href``/``url()``/``@import``).

    ``allow`` lists URL prefixes to ignore (e.g. the tile templates of optional base layers,
    which are strings in a script, not loads by the page itself).
    """
    ignored = (*allow, *_LINKS_NOT_LOADS)
    return [u for m in _EXTERNAL_RE.finditer(page) if not (u := m.group(1)).startswith(ignored)]


# --------------------------------------------------------------------------- GCJ-02 overlay shift


def gcj02_offset_grid(bounds: tuple[float, float, float, float], *, step_deg: float = 0.01,
                      ) -> dict[str, Any]:
    """Return a lon/lat grid of GCJ-02 offsets (degrees) over ``bounds`` for the browser shift.

    The offsets come from :func:`qyx_geo.crs.wgs84_to_gcj02`; the page interpolates them
    bilinearly. The offset varies with a period of 1/3 degree at most, so a 0.01 degree grid
    keeps the interpolation error far below a metre.

    Parameters
    ----------
    bounds
        ``(min_lon, min_lat, max_lon, max_lat)`` in WGS84; padded by one step each side.
    step_deg
        Grid spacing in degrees.
    """
    from qyx_geo.crs import wgs84_to_gcj02

    if not step_deg > 0:
        msg = f"step_deg must be positive, got {step_deg!r}."
        raise SettingsError(msg)
    x0, y0, x1, y1 = bounds
    lons = np.arange(x0 - step_deg, x1 + 2 * step_deg, step_deg)
    lats = np.arange(y0 - step_deg, y1 + 2 * step_deg, step_deg)
    glon, glat = np.meshgrid(lons, lats)
    slon, slat = wgs84_to_gcj02(glon.ravel(), glat.ravel())
    return {
        "lon0": round(float(lons[0]), 7), "lat0": round(float(lats[0]), 7), "step": step_deg,
        "nx": len(lons), "ny": len(lats),
        "dlon": np.round(slon - glon.ravel(), 8).tolist(),
        "dlat": np.round(slat - glat.ravel(), 8).tolist(),
    }


def gcj02_shift_element(m: folium.Map, gcj_layers: list[Any], grid: Mapping[str, Any],
                        ) -> Element:
    """Return a script element that shifts ``m``'s overlays to GCJ-02 while a GCJ-02 base is on.

    Add it to ``m`` after ``gcj_layers`` (the GCJ-02 tile layers, e.g. Gaode). When one of them is
    added to the map, every other layer's coordinates are moved by the offset interpolated from
    ``grid`` (see :func:`gcj02_offset_grid`); when it is removed they are put back.
    """
    code = (resources.files("qyx_geo.maps") / "_assets" / "qyx" / "gcj02-shift.js").read_text(
        encoding="utf-8")
    el: Any = macro_element("QyxGcjShift",
                            "{% macro script(this, kwargs) %}{{ this.code }}\n"
                            "qyxGcjShift({{ this.map_name }}, [{{ this.layer_names }}], "
                            "{{ this.grid }});{% endmacro %}")
    el.code = code
    el.map_name = m.get_name()
    el.layer_names = ", ".join(layer.get_name() for layer in gcj_layers)
    el.grid = json.dumps(dict(grid), separators=(",", ":"))
    return el
