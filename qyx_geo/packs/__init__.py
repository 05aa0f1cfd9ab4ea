"""Writing region packs: the manifest and the layers in the default layout.

:func:`write_pack` writes a whole pack (``qyx region init``); :func:`manifest_text` renders a
:class:`~qyx_geo.region.Region`-like description as ``region.toml``; :func:`update_pack`
replaces some files of an existing pack and flips their provenance (``qyx region
import-units`` / ``import-population``). The builders live in :mod:`qyx_geo.packs.init`
(a pack from the official codes), :mod:`qyx_geo.packs.units_import` and
:mod:`qyx_geo.packs.population`.

Everything is written atomically: a new pack is written into a staging folder beside the
target and renamed into place; an update writes each file through a temporary name and the
manifest last, so a reader sees either the old pack or the new one.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from qyx_geo._errors import SettingsError
from qyx_geo._io import atomic_write_text
from qyx_geo.region import DEFAULT_LAYOUT, FORMAT_VERSION, MANIFEST_NAME, Region, read_region
from qyx_geo.schema import FACILITY_COLUMNS, FACILITY_LAYERS
from qyx_geo.synth import geojson_text, write_csv
from qyx_geo.units import DEMAND_CSV_COLUMNS

__all__ = ["FileInfo", "PackMeta", "demand_text", "ensure_writable", "manifest_text", "meta_of",
           "townships_text", "units_text", "update_pack", "write_pack"]

_TOWNSHIP_FIELDS = ("code", "name", "kind", "seat_lon", "seat_lat", "seat_source",
                    "seat_geonames_name", "seat_geonameid", "approximate", "source",
                    "geometry_source")
_UNIT_FIELDS = ("code", "name", "township_code", "township_name", "kind", "centre_lon",
                "centre_lat", "centre_source", "approximate", "source", "geometry_source")


@dataclasses.dataclass(frozen=True)
class FileInfo:
    """Provenance of one file of a pack (see :class:`qyx_geo.region.RegionFile`)."""

    status: str
    source: str = ""
    licence: str = ""
    note: str = ""


@dataclasses.dataclass(frozen=True)
class PackMeta:
    """The ``[region]`` and ``[population]`` parts of a manifest."""

    code: str
    name_zh: str
    name_en: str
    crs: str
    province_zh: str = ""
    prefecture_zh: str = ""
    levels: tuple[str, ...] = ("township", "village")
    population_total: int | None = None
    population_source: str = ""
    population_year: int | None = None


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # JSON string escapes (\" \\ \n \t \uXXXX) are valid TOML basic-string escapes
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    msg = f"cannot write {value!r} to TOML"
    raise TypeError(msg)


def manifest_text(meta: PackMeta, files: Mapping[str, tuple[str, FileInfo]]) -> str:
    """Return ``region.toml`` text for ``meta`` and ``files`` (key → (relative path, info)).

    Keys are those of :data:`qyx_geo.region.FILE_KEYS`; ``facilities.<layer>`` become
    ``[files.facilities.<layer>]`` tables.
    """
    lines = [f"# 区域数据包清单 / region pack manifest: {meta.name_zh} {meta.name_en} "
             f"({meta.code}). Format: docs/regions.md; check with `qyx region check DIR`.",
             f"format = {FORMAT_VERSION}", "", "[region]"]
    region = {"code": meta.code, "name_zh": meta.name_zh, "name_en": meta.name_en,
              "province_zh": meta.province_zh, "prefecture_zh": meta.prefecture_zh,
              "crs": meta.crs, "levels": list(meta.levels)}
    lines += [f"{k} = {_toml(v)}" for k, v in region.items() if v != ""]
    if meta.population_total is not None or meta.population_source:
        lines += ["", "[population]"]
        if meta.population_total is not None:
            lines.append(f"total = {int(meta.population_total)}")
        if meta.population_year is not None:
            lines.append(f"year = {int(meta.population_year)}")
        lines.append(f"source = {_toml(meta.population_source)}")
    for key, (rel, info) in files.items():
        lines += ["", f"[files.{key}]", f"path = {_toml(rel)}", f"status = {_toml(info.status)}"]
        for field in ("source", "licence", "note"):
            value = getattr(info, field)
            if value:
                lines.append(f"{field} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _layer_texts(outline: gpd.GeoDataFrame, townships: gpd.GeoDataFrame,
                 units: gpd.GeoDataFrame, demand: pd.DataFrame,
                 facilities: Mapping[str, gpd.GeoDataFrame], meta: PackMeta) -> dict[str, str]:
    """Render every layer of a pack in the default layout (relative path → text)."""
    texts: dict[str, str] = {}
    o = outline.iloc[0]
    texts[DEFAULT_LAYOUT["outline"]] = geojson_text(
        [{"adcode": meta.code, "name": meta.name_zh, "source": str(o.get("source", "unknown"))}],
        [o.geometry], name="county_outline",
        meta={"qyx_geo": {"crs": "EPSG:4326", "approximate_geometry": False}})
    texts[DEFAULT_LAYOUT["townships"]] = townships_text(townships)
    texts[DEFAULT_LAYOUT["units"]] = units_text(units)
    for layer in FACILITY_LAYERS:
        gdf = facilities[layer]
        cols = [c for c in (*FACILITY_COLUMNS[:-1], "attribution") if c in gdf.columns]
        records = [{"id": str(i), **{c: _plain(row[c]) for c in cols}}
                   for i, row in gdf.drop(columns="geometry").iterrows()]
        texts[DEFAULT_LAYOUT[f"facilities.{layer}"]] = geojson_text(
            records, list(gdf.geometry), name=layer,
            meta={"qyx_geo": {"crs": "EPSG:4326", "layer": layer}})
    return texts


def townships_text(townships: gpd.GeoDataFrame) -> str:
    """Return the townships layer (index: 9-digit code, WGS84) as the pack's GeoJSON text."""
    t = townships.reset_index()
    return geojson_text(
        [{f: _plain(r.get(f, "")) for f in _TOWNSHIP_FIELDS} for _, r in t.iterrows()],
        list(t.geometry), name="townships", meta={"qyx_geo": {"crs": "EPSG:4326"}})


def units_text(units: gpd.GeoDataFrame) -> str:
    """Return the villages/communities layer (index: 12-digit code) as the pack's GeoJSON text."""
    u = units.reset_index()
    return geojson_text(
        [{f: _plain(r.get(f, "")) for f in _UNIT_FIELDS} for _, r in u.iterrows()],
        list(u.geometry), name="villages", meta={"qyx_geo": {"crs": "EPSG:4326"}})


def demand_text(demand: pd.DataFrame) -> str:
    """Return demand points (columns of ``demand.csv``, or indexed by ``id``) as CSV text."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(DEMAND_CSV_COLUMNS)
    for row in _demand_rows(demand):
        writer.writerow([round(v, 6) if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    return value


def _demand_rows(demand: pd.DataFrame) -> list[tuple[Any, ...]]:
    frame = demand.reset_index() if "id" not in demand.columns else demand
    if "lon" not in frame.columns and "geometry" in frame.columns:
        frame = frame.assign(lon=frame.geometry.x, lat=frame.geometry.y)
    return list(frame[list(DEMAND_CSV_COLUMNS)].itertuples(index=False, name=None))


def write_pack(out: str | os.PathLike[str], meta: PackMeta, *, outline: gpd.GeoDataFrame,
               townships: gpd.GeoDataFrame, units: gpd.GeoDataFrame, demand: pd.DataFrame,
               facilities: Mapping[str, gpd.GeoDataFrame], provenance: Mapping[str, FileInfo],
               network: str | os.PathLike[str] | None = None,
               plan: str | os.PathLike[str] | None = None,
               extra_files: Mapping[str, bytes] | None = None, overwrite: bool = False) -> Region:
    """Write a complete pack into ``out`` (staged, then renamed) and return its manifest.

    Parameters
    ----------
    out
        The pack folder to create; it must not exist (or be empty) unless ``overwrite``.
    meta
        Names, code, CRS, population.
    outline, townships, units, demand, facilities
        The layers (WGS84), as :func:`qyx_geo.region.load_region` returns them.
    provenance
        File key → :class:`FileInfo` for every file written.
    network, plan
        Files copied into ``network/`` and ``plan/`` (optional; a plan comes with the other
        files of its folder, which it names relative to itself).
    extra_files
        Further files (relative path → bytes), e.g. a source's licence text.
    overwrite
        Replace an existing pack folder.
    """
    target = Path(out)
    if target.exists() and any(target.iterdir()) and not overwrite:
        msg = (f"{str(target)!r} exists and is not empty; choose a new folder or pass "
               "--force to replace it.")
        raise SettingsError(msg)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.qyx-stage.", dir=target.parent))
    try:
        files: dict[str, tuple[str, FileInfo]] = {}
        for rel, text in _layer_texts(outline, townships, units, demand, facilities,
                                      meta).items():
            _write(stage / rel, text)
        demand_path = stage / DEFAULT_LAYOUT["demand"]
        demand_path.parent.mkdir(parents=True, exist_ok=True)
        write_csv(demand_path, list(DEMAND_CSV_COLUMNS), _demand_rows(demand))
        for key, rel in DEFAULT_LAYOUT.items():
            files[key] = (rel, provenance[key])
        for key, src, folder in (("network", network, "network"), ("plan", plan, "plan")):
            if src is None:
                continue
            rel = f"{folder}/{Path(src).name}"
            (stage / folder).mkdir(exist_ok=True)
            # a plan file names its text and indicator table relative to itself: bring its folder
            sources = ([f for f in Path(src).parent.iterdir() if f.is_file()] if key == "plan"
                       else [Path(src)])
            for f in sources:
                shutil.copyfile(f, stage / folder / f.name)
            files[key] = (rel, provenance[key])
        for rel, data in (extra_files or {}).items():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            (stage / rel).write_bytes(data)
        _write(stage / MANIFEST_NAME, manifest_text(meta, files))
        read_region(stage)  # the manifest we wrote must read back
        umask = os.umask(0)
        os.umask(umask)
        stage.chmod(0o777 & ~umask)  # mkdtemp made it private
        _swap_in(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return read_region(target)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def _swap_in(stage: Path, target: Path) -> None:
    """Rename ``stage`` to ``target``; an existing ``target`` is moved aside, then removed."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.qyx-old.{os.getpid()}")
        target.rename(old)
    stage.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def update_pack(region: Region, *, texts: Mapping[str, str] | None = None,
                blobs: Mapping[str, bytes] | None = None,
                provenance: Mapping[str, tuple[str, FileInfo]] | None = None,
                meta: PackMeta | None = None) -> Region:
    """Replace files of an existing pack and rewrite its manifest (written last).

    Parameters
    ----------
    region
        The pack to update.
    texts, blobs
        Relative path → new content (text UTF-8, or bytes).
    provenance
        File key → (relative path, :class:`FileInfo`) to set in the manifest.
    meta
        New ``[region]``/``[population]`` values (default: unchanged).
    """
    ensure_writable(region)
    root = region.root
    for rel, text in (texts or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(root / rel, text)
    for rel, data in (blobs or {}).items():
        from qyx_geo._io import atomic_write_bytes

        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(root / rel, data)
    files = {k: (f.to_dict(root)["path"], FileInfo(f.status, f.source, f.licence, f.note))
             for k, f in region.files.items()}
    files.update(provenance or {})
    meta = meta or meta_of(region)
    atomic_write_text(root / MANIFEST_NAME, manifest_text(meta, files))
    return read_region(root)


def ensure_writable(region: Region) -> None:
    """Refuse to change the embedded pack: its audit figures are the reference.

    Raises
    ------
    SettingsError
        ``region`` is the embedded pack (``data/``); the message says to copy it first.
    """
    if region.embedded:
        msg = (f"{str(region.root)!r} is the embedded pack, which imports do not change (its "
               "audit figures are the reference); copy it to a new folder and import into the "
               "copy (--region DIR).")
        raise SettingsError(msg)


def meta_of(region: Region) -> PackMeta:
    """Return the :class:`PackMeta` of a read manifest."""
    return PackMeta(code=region.code, name_zh=region.name_zh, name_en=region.name_en,
                    crs=region.crs, province_zh=region.province_zh,
                    prefecture_zh=region.prefecture_zh, levels=tuple(region.levels),
                    population_total=region.population.get("total"),
                    population_source=str(region.population.get("source") or ""),
                    population_year=region.population.get("year"))


def sorted_keys(keys: Sequence[str]) -> list[str]:
    """File keys in manifest order."""
    from qyx_geo.region import FILE_KEYS

    return sorted(keys, key=lambda k: FILE_KEYS.index(k) if k in FILE_KEYS else len(FILE_KEYS))
