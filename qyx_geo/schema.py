"""Column names and CRS constants of the data model, shared by every stage.

Keys: villages/communities by their 12-digit official code (``str``), townships by the 9-digit
code. On disk layers are WGS84 (EPSG:4326). Metric work happens in the network's local CRS
(:func:`qyx_geo.crs.local_metric_crs`); for Cixi that is CGCS2000 / 3-degree Gauss-Kruger CM
120E, :data:`METRIC_CRS` (EPSG:4549), which the synthetic generators use.
"""

from __future__ import annotations

__all__ = [
    "DEMAND_COLUMNS",
    "FACILITY_COLUMNS",
    "FACILITY_LAYERS",
    "METRIC_CRS",
    "SOURCES",
    "TOWNSHIP_COLUMNS",
    "UNIT_COLUMNS",
    "UNIT_KINDS",
    "WGS84",
]

WGS84 = "EPSG:4326"
METRIC_CRS = "EPSG:4549"

#: Where a row comes from. ``synthetic`` rows are generated and must be labelled as such.
SOURCES = ("osm", "geonames", "nbs", "synthetic", "user")

#: Unit kinds: urban communities / residents' committees, village committees, and the
#: "virtual communities" that the statistics code gives the development zones.
UNIT_KINDS = ("社区/居委会", "村委会", "虚拟社区")

FACILITY_LAYERS = ("nursery", "canteen", "clinic", "sports")

#: Villages/communities GeoDataFrame (index ``code``, 12 digits).
UNIT_COLUMNS = ("name", "township_code", "township_name", "kind", "approximate", "source",
                "geometry")
#: Township GeoDataFrame (index ``code``, 9 digits); seat_* give the seat point (WGS84).
TOWNSHIP_COLUMNS = ("name", "kind", "seat_lon", "seat_lat", "seat_source", "approximate",
                    "geometry")
#: Demand points (index ``id``): residential clusters with population by age group.
DEMAND_COLUMNS = ("unit_code", "township_code", "pop", "pop_0_3", "pop_60p", "source",
                  "geometry")
#: Facility layers (index ``id``); ``capacity`` is NaN where not meaningful.
FACILITY_COLUMNS = ("name", "layer", "level", "capacity", "township_code", "unit_code", "source",
                    "geometry")
