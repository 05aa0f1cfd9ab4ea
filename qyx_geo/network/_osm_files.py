"""Reading street-network files for :mod:`qyx_geo.network`: formats, osmnx's way filters, PBF.

Everything here turns a file into an *unsimplified, unfiltered* osmnx graph whose edges carry
the tags the way filter needs; :mod:`qyx_geo.network` filters, simplifies, projects and caches.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import logging
import re
import xml.etree.ElementTree as ET
import xml.sax
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import osmnx as ox

from qyx_geo._errors import DataFileError

__all__ = [
    "FORMATS",
    "OSMNX_WAY_FILTERS",
    "FileFormat",
    "WayFilter",
    "detect_format",
    "highway_counts",
    "osmnx_settings",
    "osmnx_way_filter",
    "pbf_to_xml",
    "read_graphml",
    "read_osm_xml",
    "xml_generator",
]

logger = logging.getLogger(__name__)

FileFormat = Literal["osm", "pbf", "graphml"]

#: File name endings we read, and how.
FORMATS: dict[str, FileFormat] = {
    ".osm": "osm", ".xml": "osm", ".osm.bz2": "osm", ".osm.gz": "osm", ".xml.bz2": "osm",
    ".osm.pbf": "pbf", ".pbf": "pbf", ".graphml": "graphml",
}

# One clause of an Overpass way filter: ["key"], ["key"~"re"] or ["key"!~"re"].
_CLAUSE = re.compile(r'\["([^"]+)"(?:(!?~)"([^"]*)")?\]')

#: osmnx's Overpass way filters per network type, verbatim from osmnx 2.1
#: (``osmnx/_overpass.py``, MIT licence, © Geoff Boeing), with ``{access}`` standing for the
#: public setting ``osmnx.settings.default_access``. Kept here so that no private osmnx name is
#: imported; ``tests/test_network.py`` compares every entry with the installed osmnx's own.
OSMNX_WAY_FILTERS: dict[str, str] = {
    "drive": (
        '["highway"]["area"!~"yes"]{access}'
        '["highway"!~"abandoned|bridleway|bus_guideway|construction|corridor|'
        "cycleway|elevator|escalator|footway|no|path|pedestrian|planned|platform|"
        'proposed|raceway|razed|rest_area|service|services|steps|track"]'
        '["motor_vehicle"!~"no"]["motorcar"!~"no"]'
        '["service"!~"alley|driveway|emergency_access|parking|parking_aisle|private"]'
    ),
    "drive_service": (
        '["highway"]["area"!~"yes"]{access}'
        '["highway"!~"abandoned|bridleway|bus_guideway|construction|corridor|'
        "cycleway|elevator|escalator|footway|no|path|pedestrian|planned|platform|"
        'proposed|raceway|razed|rest_area|services|steps|track"]'
        '["motor_vehicle"!~"no"]["motorcar"!~"no"]'
        '["service"!~"emergency_access|parking|parking_aisle|private"]'
    ),
    "walk": (
        '["highway"]["area"!~"yes"]{access}'
        '["highway"!~"abandoned|bus_guideway|construction|cycleway|motor|no|planned|'
        'platform|proposed|raceway|razed|rest_area|services"]'
        '["foot"!~"no"]["service"!~"private"]'
        '["sidewalk"!~"separate"]["sidewalk:both"!~"separate"]'
        '["sidewalk:left"!~"separate"]["sidewalk:right"!~"separate"]'
    ),
    "bike": (
        '["highway"]["area"!~"yes"]{access}'
        '["highway"!~"abandoned|bus_guideway|construction|corridor|elevator|'
        "escalator|footway|motor|no|planned|platform|proposed|raceway|razed|"
        'rest_area|services|steps"]'
        '["bicycle"!~"no"]["service"!~"private"]'
    ),
    "all_public": (
        '["highway"]["area"!~"yes"]{access}'
        '["highway"!~"abandoned|construction|no|planned|platform|proposed|raceway|'
        'razed|rest_area|services"]'
        '["service"!~"private"]'
    ),
    "all": (
        '["highway"]["area"!~"yes"]["highway"!~"abandoned|construction|no|planned|'
        'platform|proposed|raceway|razed|rest_area|services"]'
    ),
}


def osmnx_way_filter(network_type: str) -> str:
    """Return osmnx's Overpass way filter for ``network_type`` (with its current access rule)."""
    try:
        template = OSMNX_WAY_FILTERS[network_type]
    except KeyError:
        msg = (f"network_type must be one of {', '.join(OSMNX_WAY_FILTERS)}; got "
               f"{network_type!r}")
        raise ValueError(msg) from None
    return template.replace("{access}", str(ox.settings.default_access))


class WayFilter:
    """osmnx's Overpass way filter for a network type, applied to tags we already hold.

    The filter string is osmnx's own (:data:`OSMNX_WAY_FILTERS`), parsed into
    clauses with Overpass semantics: ``["k"]`` needs the key, ``["k"~"re"]`` needs a value
    matching ``re`` (unanchored, case-sensitive), ``["k"!~"re"]`` rejects a matching value and
    accepts a missing key. Tag values that simplification turned into lists fail if any value
    fails.
    """

    def __init__(self, network_type: str) -> None:
        self.network_type = network_type
        text = osmnx_way_filter(network_type)
        self.text = text
        self.clauses = [(k, op or None, re.compile(rx) if op else None)
                        for k, op, rx in _CLAUSE.findall(text)]
        if not self.clauses:  # pragma: no cover - osmnx changed its filter syntax
            msg = f"cannot parse osmnx's {network_type!r} way filter {text!r}"
            raise RuntimeError(msg)

        #: Tag keys the filter reads.
        self.keys: list[str] = list(dict.fromkeys(k for k, _, _ in self.clauses))
        self._memo: dict[tuple[Any, ...], bool] = {}

    def accepts(self, tags: Mapping[str, Any]) -> bool:
        """Return whether a way (or an edge's attributes) passes the filter."""
        # edges of one way share their tags: decide each distinct combination once
        memo_key = tuple(tuple(v) if isinstance(v, list) else v
                         for v in (tags.get(k) for k in self.keys))
        hit = self._memo.get(memo_key)
        if hit is None:
            hit = self._memo[memo_key] = self._accepts(tags)
        return hit

    def _accepts(self, tags: Mapping[str, Any]) -> bool:
        for key, op, rx in self.clauses:
            value = tags.get(key)
            if op is None:
                if value is None:
                    return False
                continue
            values = [str(v) for v in value] if isinstance(value, list) else (
                [] if value is None else [str(value)])
            hit = any(rx.search(v) for v in values)  # type: ignore[union-attr]
            if (op == "~" and not hit) or (op == "!~" and hit):
                return False
        return True


def detect_format(path: Path) -> FileFormat:
    """Return the format of ``path`` from its name, or raise :class:`DataFileError`."""
    name = path.name.lower()
    for ending in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ending):
            return FORMATS[ending]
    msg = (f"{str(path)!r}: unknown network file type; use one of "
           f"{', '.join(sorted(FORMATS))} (OSM XML, OSM PBF or osmnx GraphML)")
    raise DataFileError(msg)


@contextlib.contextmanager
def osmnx_settings(**overrides: Any) -> Iterator[None]:
    """Temporarily change ``osmnx.settings`` and restore them afterwards."""
    old = {k: getattr(ox.settings, k) for k in overrides}
    try:
        for k, v in overrides.items():
            setattr(ox.settings, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(ox.settings, k, v)


def _open_text(path: Path) -> Any:
    if path.suffix == ".bz2":
        return bz2.open(path, "rt", encoding="utf-8")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("rt", encoding="utf-8")


def xml_generator(path: Path) -> str:
    """Return the ``generator`` attribute of an OSM XML file's root ('' if none or unreadable)."""
    with (contextlib.suppress(OSError, EOFError, ET.ParseError, UnicodeDecodeError),
          _open_text(path) as fh):
        for _, elem in ET.iterparse(fh, events=("start",)):
            return str(elem.attrib.get("generator", ""))
    return ""


def read_osm_xml(path: Path, wf: WayFilter, *, bidirectional: bool) -> nx.MultiDiGraph:
    """Read OSM XML through ``osmnx.graph_from_xml``, keeping the tags ``wf`` needs.

    Returns the raw (unsimplified, unfiltered, all components) graph; broken, empty or
    non-OSM files raise :class:`DataFileError` naming the file.
    """
    tags = list(dict.fromkeys([*ox.settings.useful_tags_way, *wf.keys, "source"]))
    fix = "re-export the extract (e.g. `osmium cat in.pbf -o out.osm.bz2`) or download it again"
    try:
        with osmnx_settings(useful_tags_way=tags):
            return ox.graph_from_xml(path, bidirectional=bidirectional, simplify=False,
                                     retain_all=True)
    except (ET.ParseError, xml.sax.SAXParseException) as err:
        msg = f"{str(path)!r} is not valid OSM XML ({err}); {fix}"
        raise DataFileError(msg) from err
    except (OSError, EOFError, UnicodeDecodeError) as err:
        msg = f"{str(path)!r} cannot be read or decompressed ({err}); {fix}"
        raise DataFileError(msg) from err
    except ox._errors.InsufficientResponseError as err:
        msg = f"{str(path)!r} holds no OSM nodes or ways; use a file with streets"
        raise DataFileError(msg) from err
    except (KeyError, TypeError, ValueError) as err:
        msg = f"{str(path)!r} is XML but not OSM XML ({type(err).__name__}: {err}); {fix}"
        raise DataFileError(msg) from err


def read_graphml(path: Path) -> nx.MultiDiGraph:
    """Read an osmnx GraphML file; broken files raise :class:`DataFileError`."""
    try:
        return ox.load_graphml(path)
    except (ET.ParseError, nx.NetworkXError, OSError, EOFError, KeyError, ValueError,
            TypeError, IndexError) as err:
        msg = (f"{str(path)!r} is not a readable osmnx GraphML file ({type(err).__name__}: "
               f"{err}); save graphs with osmnx.save_graphml")
        raise DataFileError(msg) from err


def pbf_to_xml(pbf: Path, out: Path, *,
               bbox: tuple[float, float, float, float] | None = None) -> Path:
    """Convert the ``highway`` ways of an OSM PBF (plus the nodes they use) to OSM XML.

    Two passes with pyosmium: collect the ways with a ``highway`` tag (with ``bbox`` = (west,
    south, east, north), only ways with a node inside it) and the nodes they reference, then
    write exactly those objects, so that the XML is reference-complete and can go through
    ``osmnx.graph_from_xml`` like any extract. Returns ``out``.
    """
    import osmium  # heavy; only needed for PBF

    try:
        ids = osmium.IdTracker()
        fp = osmium.FileProcessor(str(pbf), osmium.osm.WAY if bbox is None
                                  else osmium.osm.NODE | osmium.osm.WAY)
        if bbox is not None:
            fp = fp.with_locations()
        w, s, e, n = bbox or (0.0, 0.0, 0.0, 0.0)
        for way in fp.with_filter(osmium.filter.KeyFilter("highway")):
            if not isinstance(way, osmium.osm.Way):
                continue
            if bbox is not None and not any(
                    nd.location.valid() and w <= nd.lon <= e and s <= nd.lat <= n
                    for nd in way.nodes):
                continue
            ids.add_way(way.id)
            ids.add_references(way)
        with osmium.SimpleWriter(str(out), overwrite=True) as writer:
            for obj in osmium.FileProcessor(str(pbf), osmium.osm.NODE | osmium.osm.WAY
                                            ).with_filter(ids.id_filter()):
                writer.add(obj)
    except RuntimeError as err:
        msg = (f"{str(pbf)!r} is not a readable OSM PBF file ({err}); check the download "
               "(`osmium fileinfo FILE`) or export it again")
        raise DataFileError(msg) from err
    return out


def highway_counts(G: nx.MultiDiGraph) -> Counter[str]:  # noqa: N803
    """Return how many edges carry each ``highway`` value (lists counted per value)."""
    counts: Counter[str] = Counter()
    for _, _, hw in G.edges(data="highway"):
        for value in hw if isinstance(hw, list) else [hw]:
            counts[str(value)] += 1
    return counts
