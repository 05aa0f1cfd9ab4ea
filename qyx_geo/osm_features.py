"""Features from an OSM extract: facilities by a tag table, buildings, residential streets.

One streaming pass of pyosmium over ``.osm``, ``.osm.bz2``, ``.osm.gz`` or ``.osm.pbf`` (node
locations kept in pyosmium's index, so memory grows with the extract, not with Python objects).
Every OSM object whose tags match is returned as one row — with a point (nodes), a
representative point on the outline (closed ways, multipolygon relations; ``shapely``
``point_on_surface``) or the middle of the line (open ways) — or, when no geometry can be built,
with the reason: in an extract clipped at a bounding box, ways and relations lose the nodes and
members outside it, and such objects are reported, never silently dropped.

The tag table for the four facility layers is :data:`LAYER_TAGS` (documented with the OSM wiki
conventions and Chinese mapping practice in ``docs/intake.md``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from qyx_geo._errors import DataFileError, SettingsError

__all__ = [
    "LAYER_TAGS",
    "OSM_SUFFIXES",
    "FeatureScan",
    "TagRule",
    "is_osm_file",
    "scan_features",
]

logger = logging.getLogger(__name__)

#: File endings read as OSM data.
OSM_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf", ".xml.bz2")


@dataclasses.dataclass(frozen=True)
class TagRule:
    """One way an OSM object qualifies.

    Every ``tags`` key has one of its values (``"*"``: any value) and, when ``name_pattern``
    is set, the name matches it (a regular expression).
    """

    tags: Mapping[str, tuple[str, ...]]
    name_pattern: str | None = None

    def matches(self, tags: Mapping[str, str], name: str) -> bool:
        """Return whether an object with ``tags`` and ``name`` qualifies."""
        for key, values in self.tags.items():
            value = tags.get(key)
            if value is None or ("*" not in values and value not in values):
                return False
        return self.name_pattern is None or re.search(self.name_pattern, name) is not None

    def describe(self) -> str:
        """Return the rule as text, e.g. ``amenity=clinic|doctors``."""
        parts = [f"{k}={'|'.join(v)}" for k, v in self.tags.items()]
        if self.name_pattern:
            parts.append(f"name~/{self.name_pattern}/")
        return " + ".join(parts)


def _rule(name_pattern: str | None = None, **tags: str) -> TagRule:
    return TagRule({k.replace("__", ":"): tuple(v.split("|")) for k, v in tags.items()},
                   name_pattern)


_MEAL_NAMES = r"助餐|老年食堂|长者食堂|老人食堂|幸福食堂|爱心食堂|颐养食堂|老年餐桌|长者饭堂"
_ELDER_FOR = "senior|elderly|aged|seniors"

#: Which OSM objects count as a facility of each layer (first matching rule wins). See
#: docs/intake.md for the reasons behind each line.
LAYER_TAGS: dict[str, tuple[TagRule, ...]] = {
    # 托育 (0-3 years): childcare is the OSM tag for nurseries/crèches; kindergartens (幼儿园,
    # 3-6) are kept too because Chinese 托幼一体 kindergartens run the 托班 the plan counts.
    "nursery": (_rule(amenity="childcare"), _rule(amenity="kindergarten"),
                _rule(social_facility="nursery|day_care", social_facility__for="child|children")),
    # 老年助餐: meal points for the elderly — social facilities for seniors that serve meals,
    # soup kitchens, and restaurants/canteens named as elderly canteens (the usual Chinese way).
    "canteen": (_rule(amenity="social_facility", social_facility="soup_kitchen"),
                _rule(amenity="social_facility", social_facility="day_care|outreach",
                      social_facility__for=_ELDER_FOR),
                _rule(_MEAL_NAMES, amenity="*"),
                _rule(_MEAL_NAMES, social_facility="*")),
    # 医疗卫生: hospitals, clinics (社区卫生服务中心/站, 乡镇卫生院) and doctors (村卫生室,
    # 诊所); dentists and pharmacies are not basic primary care in the plan's sense.
    "clinic": (_rule(amenity="hospital|clinic|doctors"),
               _rule(healthcare="hospital|clinic|doctor|centre")),
    # 体育健身: pitches (篮球场, 门球场), sports centres, halls and tracks, village fitness
    # paths (健身路径 = fitness_station) and gyms.
    "sports": (_rule(leisure="pitch|sports_centre|sports_hall|fitness_station|fitness_centre|"
                             "track|stadium"),),
}


@dataclasses.dataclass(frozen=True)
class FeatureScan:
    """What :func:`scan_features` found.

    Attributes
    ----------
    rows
        One row per matching object: ``osm_type`` (``node``/``way``/``relation``), ``osm_id``,
        ``rule`` (index into the rules), ``name``, ``tags`` (dict), ``lon``/``lat`` (NaN when no
        geometry), ``geometry`` (WGS84 shapely geometry or ``None``), ``shape`` (``point``,
        ``polygon``, ``line``), ``problem`` (why there is no geometry, else ``""``).
    timestamp
        Newest object timestamp in the file (ISO 8601, UTC), ``""`` if none.
    objects
        Nodes, ways and relations read.
    """

    rows: pd.DataFrame
    timestamp: str
    objects: Mapping[str, int]


def is_osm_file(path: str | Path) -> bool:
    """Return whether ``path`` has an OSM data file ending."""
    name = Path(path).name.lower()
    return name.endswith(OSM_SUFFIXES)


def _name(tags: Mapping[str, str]) -> str:
    for key in ("name", "name:zh", "name:zh-Hans", "official_name", "name:en"):
        if tags.get(key):
            return str(tags[key])
    return ""


def scan_features(path: str | Path, rules: Sequence[TagRule], *,
                  keys: Iterable[str] | None = None) -> FeatureScan:
    """Stream an OSM file and return every object matching one of ``rules``.

    Parameters
    ----------
    path
        ``.osm``, ``.osm.bz2``, ``.osm.gz`` or ``.osm.pbf`` file.
    rules
        Tag rules; an object takes the first rule it matches.
    keys
        Tag keys of interest (speeds up reading); default: the keys the rules name, plus
        ``name`` when a rule matches by name.

    Raises
    ------
    DataFileError
        The file is missing or not readable OSM data (the message names the file).
    """
    file = Path(path)
    if not file.is_file() or file.stat().st_size == 0:
        msg = f"OSM file {str(file)!r} does not exist or is empty; check the path"
        raise DataFileError(msg)
    if not is_osm_file(file):
        msg = (f"{file.name}: not an OSM data file; use {', '.join(OSM_SUFFIXES)} (an OSM extract, "
               "e.g. from Geofabrik or `osmium extract`)")
        raise DataFileError(msg)
    wanted = set(keys) if keys is not None else {k for r in rules for k in r.tags}
    if any(r.name_pattern for r in rules):
        wanted.add("name")
    try:
        return _scan(file, rules, wanted, areas=True)
    except DataFileError as err:
        # pyosmium assembles multipolygons only from sorted input; Overpass exports and hand
        # edits are often unsorted: read them without multipolygon outlines (reported per row)
        if "out of order" not in str(err):
            raise
        logger.info("%s is not sorted by id; multipolygon outlines are not assembled", file.name)
        return _scan(file, rules, wanted, areas=False)


def _scan(file: Path, rules: Sequence[TagRule], wanted: set[str], *,
          areas: bool) -> FeatureScan:
    import osmium

    wkb = osmium.geom.WKBFactory()
    rows: list[dict[str, Any]] = []
    relations: dict[int, int] = {}  # relation id -> row position, waiting for its area
    counts = {"node": 0, "way": 0, "relation": 0}
    newest: dt.datetime | None = None
    try:
        proc = osmium.FileProcessor(str(file)).with_locations()
        if areas:
            proc = proc.with_areas(osmium.filter.KeyFilter(*sorted(wanted)) if wanted else None)
        for obj in proc:
            if isinstance(obj, osmium.osm.Area):
                if not obj.from_way() and obj.orig_id() in relations:
                    _relation_area(rows[relations.pop(obj.orig_id())], obj, wkb)
                continue
            if isinstance(obj, osmium.osm.Changeset):  # edit metadata, no map feature
                continue
            kind = ("node" if isinstance(obj, osmium.osm.Node) else
                    "way" if isinstance(obj, osmium.osm.Way) else "relation")
            counts[kind] += 1
            ts = obj.timestamp
            if ts is not None and ts.year > 1970 and (newest is None or ts > newest):
                newest = ts
            if not len(obj.tags):
                continue
            tags = {t.k: t.v for t in obj.tags}
            name = _name(tags)
            rule = next((i for i, r in enumerate(rules) if r.matches(tags, name)), None)
            if rule is None:
                continue
            row: dict[str, Any] = {"osm_type": kind, "osm_id": int(obj.id), "rule": rule,
                                   "name": name, "tags": tags, "geometry": None, "shape": "",
                                   "problem": ""}
            if isinstance(obj, osmium.osm.Node):
                loc = obj.location
                row.update(geometry=shapely.Point(loc.lon, loc.lat), shape="point")
            elif isinstance(obj, osmium.osm.Way):
                _way_geometry(row, obj)
            elif tags.get("type") in ("multipolygon", "boundary"):
                relations[obj.id] = len(rows)
                row["problem"] = _UNSORTED if not areas else _INCOMPLETE
            else:
                row["problem"] = (f"关系类型 {tags.get('type')!r} 无几何 / a relation of type "
                                  f"{tags.get('type')!r} has no geometry of its own; tag the "
                                  "facility on a node or an area")
            rows.append(row)
    except RuntimeError as err:
        msg = (f"{file.name}: not readable OSM data ({err}); check the download "
               "(`osmium fileinfo FILE`) or export it again")
        raise DataFileError(msg) from err
    frame = pd.DataFrame.from_records(
        rows, columns=["osm_type", "osm_id", "rule", "name", "tags", "geometry", "shape",
                       "problem"])
    pts = [shapely.point_on_surface(g) if g is not None and g.geom_type != "LineString"
           else (g.interpolate(0.5, normalized=True) if g is not None else None)
           for g in frame["geometry"]]
    frame["lon"] = np.array([p.x if p is not None else np.nan for p in pts], dtype=float)
    frame["lat"] = np.array([p.y if p is not None else np.nan for p in pts], dtype=float)
    stamp = newest.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if newest else ""
    logger.info("%s: %d matching objects of %s", file.name, len(frame), counts)
    return FeatureScan(rows=frame, timestamp=stamp, objects=counts)


_INCOMPLETE = ("多边形关系的成员不全（范围外被裁掉）/ the multipolygon's members are incomplete "
               "in this file (clipped extract); map it as a node or use a larger extract")
_UNSORTED = ("文件未按编号排序，无法组装多边形关系 / the file is not sorted by id, so multipolygon "
             "outlines cannot be assembled; sort it with `osmium sort FILE -o sorted.osm.pbf`")


def _way_geometry(row: dict[str, Any], way: Any) -> None:
    coords: list[tuple[float, float]] = []
    missing = 0
    for nd in way.nodes:
        if nd.location.valid():
            coords.append((nd.location.lon, nd.location.lat))
        else:
            missing += 1
    if missing:
        row["problem"] = (f"路径 w{row['osm_id']} 有 {missing}/{len(way.nodes)} 个节点不在文件中"
                          f"（范围外被裁掉）/ way {row['osm_id']}: {missing} of {len(way.nodes)} "
                          "nodes are not in the file (clipped extract); use a larger extract")
        return
    if len(coords) >= 4 and coords[0] == coords[-1]:
        poly = shapely.Polygon(coords)
        row.update(geometry=poly if poly.is_valid else shapely.make_valid(poly), shape="polygon")
    elif len(coords) >= 2:
        row.update(geometry=shapely.LineString(coords), shape="line")
    elif coords:
        row.update(geometry=shapely.Point(coords[0]), shape="point")
    else:
        row["problem"] = f"路径无节点 / way {row['osm_id']} has no nodes"


def _relation_area(row: dict[str, Any], area: Any, wkb: Any) -> None:
    try:
        geom = shapely.from_wkb(wkb.create_multipolygon(area))
    except RuntimeError:  # osmium could not close the rings
        return
    row.update(geometry=geom, shape="polygon", problem="")


def check_layer(layer: str) -> tuple[TagRule, ...]:
    """Return the rules of a facility layer, or raise :class:`SettingsError`."""
    if layer not in LAYER_TAGS:
        msg = f"layer={layer!r} has no OSM tag table; use one of {tuple(LAYER_TAGS)!r}"
        raise SettingsError(msg)
    return LAYER_TAGS[layer]
