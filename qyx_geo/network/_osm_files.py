"""Street-network files for :mod:`qyx_geo.network`: formats, osmnx's way filters, GraphML.

OSM files themselves are streamed by :mod:`qyx_geo.network._osm_reader`; here are the pieces
around it: which file ending means which format, osmnx's Overpass way filter applied to tags
we already hold, reading osmnx GraphML, and small helpers.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import logging
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from qyx_geo._errors import DataFileError

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "FORMATS",
    "OSMNX_WAY_FILTERS",
    "FileFormat",
    "WayFilter",
    "detect_format",
    "highway_counts",
    "osmnx_settings",
    "osmnx_way_filter",
    "read_graphml",
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
    import osmnx as ox  # here, not at import: a warm audit never needs osmnx (issue 11)

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
    import osmnx as ox

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


def read_graphml(path: Path) -> nx.MultiDiGraph:
    """Read an osmnx GraphML file; broken files raise :class:`DataFileError`."""
    import networkx as nx
    import osmnx as ox

    try:
        return ox.load_graphml(path)
    except (ET.ParseError, nx.NetworkXError, OSError, EOFError, KeyError, ValueError,
            TypeError, IndexError) as err:
        msg = (f"{str(path)!r} is not a readable osmnx GraphML file ({type(err).__name__}: "
               f"{err}); save graphs with osmnx.save_graphml")
        raise DataFileError(msg) from err


def highway_counts(G: nx.MultiDiGraph) -> Counter[str]:  # noqa: N803
    """Return how many edges carry each ``highway`` value (lists counted per value)."""
    counts: Counter[str] = Counter()
    for _, _, hw in G.edges(data="highway"):
        for value in hw if isinstance(hw, list) else [hw]:
            counts[str(value)] += 1
    return counts
