"""Deterministic generators of the synthetic parts of the embedded Cixi dataset.

Nothing here is needed to *use* qyx_geo; ``python -m qyx_geo.synth`` rebuilds ``data/`` bit for
bit from the real sources copied under ``data/*/sources/`` (official codes, county outline,
GeoNames seats, OSM hospitals) and a fixed seed. Every generated row says ``source="synthetic"``
(or carries a ``*_source`` flag) so that no synthetic value passes for an observation.

This module holds the small helpers the generators share: the seed, a deterministic GeoJSON
writer and a deterministic CSV writer (fixed key order, fixed coordinate precision, Unix line
ends), so that re-running a generator reproduces the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from qyx_geo._io import atomic_write_text

__all__ = ["COORD_DECIMALS", "DEFAULT_SEED", "geojson_text", "rng_for", "write_csv",
           "write_geojson"]

#: The seed of the embedded dataset. Changing it changes every synthetic file.
DEFAULT_SEED = 20230630  # NBS code cut-off date of the 2023 division codes

#: Coordinates are written with 6 decimals (about 0.1 m), enough for any audit and stable on disk.
COORD_DECIMALS = 6


def rng_for(seed: int, *stream: str | int) -> np.random.Generator:
    """Return an independent generator for one named stream of a seeded run.

    Streams (``rng_for(seed, "demand", "330282002002")``) keep the parts of a run independent: a
    change in how facilities are drawn does not reshuffle the demand points.
    """
    words = [str(s).encode("utf-8") for s in stream]
    entropy = [int(seed)] + [int.from_bytes(w[:16].ljust(16, b"\0"), "little") for w in words]
    entropy += [len(w) for w in words]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _clean(value: Any) -> Any:
    """Make ``value`` JSON-friendly and deterministic (NaN → null, numpy → Python)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return round(value, COORD_DECIMALS)
    return value


def _geometry_json(geom: BaseGeometry) -> dict[str, Any]:
    grid = 10.0 ** -COORD_DECIMALS
    fixed = shapely.set_precision(geom, grid) if geom.geom_type != "Point" else geom
    mapping = json.loads(shapely.to_geojson(fixed))

    def rnd(obj: Any) -> Any:
        if isinstance(obj, list):
            return [rnd(o) for o in obj]
        if isinstance(obj, float):
            return round(obj, COORD_DECIMALS)
        return obj

    mapping["coordinates"] = rnd(mapping["coordinates"])
    return {"type": mapping["type"], "coordinates": mapping["coordinates"]}


def geojson_text(records: Sequence[Mapping[str, Any]], geometries: Sequence[BaseGeometry], *,
                 name: str, meta: Mapping[str, Any] | None = None) -> str:
    """Return a GeoJSON FeatureCollection (WGS84) as deterministic text.

    Parameters
    ----------
    records
        One property mapping per feature, written in the mapping's key order.
    geometries
        One geometry per feature, WGS84 lon/lat.
    name
        Layer name stored in the collection.
    meta
        Extra top-level members (e.g. ``{"qyx_geo": {"synthetic": True, "seed": 1}}``).
    """
    if len(records) != len(geometries):
        msg = f"records ({len(records)}) and geometries ({len(geometries)}) differ in length"
        raise ValueError(msg)
    out = io.StringIO()
    head: dict[str, Any] = {"type": "FeatureCollection", "name": name}
    head.update(dict(meta or {}))
    head_text = json.dumps(head, ensure_ascii=False)[:-1]
    out.write(head_text + ', "features": [\n')
    for k, (props, geom) in enumerate(zip(records, geometries, strict=True)):
        feature = {"type": "Feature",
                   "properties": {key: _clean(v) for key, v in props.items()},
                   "geometry": _geometry_json(geom)}
        out.write(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
        out.write(",\n" if k < len(records) - 1 else "\n")
    out.write("]}\n")
    return out.getvalue()


def write_geojson(path: str | os.PathLike[str], records: Sequence[Mapping[str, Any]],
                  geometries: Sequence[BaseGeometry], *, name: str,
                  meta: Mapping[str, Any] | None = None) -> Path:
    """Write :func:`geojson_text` to ``path`` atomically and return the path."""
    return atomic_write_text(path, geojson_text(records, geometries, name=name, meta=meta))


def write_csv(path: str | os.PathLike[str], header: Sequence[str],
              rows: Iterable[Sequence[Any]]) -> Path:
    """Write a UTF-8 CSV with Unix line ends atomically and return the path."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_clean(v) if isinstance(v, float | np.floating) else v for v in row])
    return atomic_write_text(path, buf.getvalue())
