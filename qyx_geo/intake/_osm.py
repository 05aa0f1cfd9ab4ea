"""OSM extracts as facility registers: one row per tagged object, through the same intake.

:func:`read_osm_table` turns the objects of an OSM file that match a layer's tag table
(:data:`qyx_geo.osm_features.LAYER_TAGS`) into a :class:`~qyx_geo.intake._readers.RawTable`,
so that :func:`qyx_geo.intake.import_register` checks, places and reports them exactly as it
does a department's spreadsheet. Areas become a point on their surface (a change, reported);
objects without a usable geometry (clipped at the extract's edge, unassembled multipolygons)
are rows that the intake rejects with that reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qyx_geo._errors import DataFileError
from qyx_geo.intake._readers import GEOM_NOTE, GEOM_X, GEOM_Y, ROW_NOTE, ROW_REJECT, RawTable
from qyx_geo.osm_features import check_layer, scan_features

__all__ = ["read_osm_table"]

_SHAPE_NOTE = {
    "polygon": "OSM 面要素取面上代表点 / OSM area reduced to a representative point on its surface",
    "line": "OSM 线要素取中点 / OSM line reduced to its midpoint",
}
_CAPACITY_TAGS = {"nursery": ("capacity",), "canteen": ("capacity", "seats"),
                  "clinic": ("beds", "capacity"), "sports": ("capacity",)}


def read_osm_table(path: str | Path, *, layer: str) -> RawTable:
    """Return the objects of an OSM file that belong to ``layer`` as register rows."""
    file = Path(path)
    rules = check_layer(layer)
    scan = scan_features(file, rules)
    rows = scan.rows
    if rows.empty:
        shown = "; ".join(r.describe() for r in rules)
        msg = (f"{file.name}: no OSM object matches the {layer} tag table ({shown}) among "
               f"{sum(scan.objects.values()):,} objects; check the extract covers the area, or "
               "import a register with `qyx facilities import`")
        raise DataFileError(msg)
    prefix = rows["osm_type"].str[0]
    cap_keys = _CAPACITY_TAGS.get(layer, ("capacity",))
    frame = pd.DataFrame({
        "id": ("osm-" + prefix + rows["osm_id"].astype(str)).to_numpy(),
        "name": [n or f"OSM {t}/{i}" for n, t, i in
                 zip(rows["name"], rows["osm_type"], rows["osm_id"], strict=True)],
        "capacity": [next((t[k] for k in cap_keys if t.get(k)), None) for t in rows["tags"]],
        # object columns (one constructor): pandas would turn the None of a str column into
        # a NaN, which is truthy
        GEOM_NOTE: [_SHAPE_NOTE.get(s) for s in rows["shape"]],
        ROW_NOTE: [f"OSM {t}/{i}: {rules[r].describe()}" for t, i, r in
                   zip(rows["osm_type"], rows["osm_id"], rows["rule"], strict=True)],
        ROW_REJECT: [p or None for p in rows["problem"]],
    }, dtype=object)
    frame[GEOM_X] = rows["lon"].to_numpy(dtype=float)
    frame[GEOM_Y] = rows["lat"].to_numpy(dtype=float)
    frame.index = pd.Index(np.arange(1, len(frame) + 1), name="row")
    notes = (f"OSM 文件最新对象时间 / newest OSM object: {scan.timestamp or 'unknown'}; "
             f"{len(frame)} 个对象符合 {layer} 标签表 / objects match the {layer} tag table",)
    return RawTable(frame=frame, format="osm", crs="EPSG:4326", notes=notes)
