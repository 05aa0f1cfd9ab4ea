"""Region packs: one county's data as a folder with a manifest (``region.toml``).

A region pack names the county (Chinese and English), its official 6-digit code, the metric CRS
its distances are measured in, its unit levels and its files — outline, townships,
villages/communities, demand points, the four facility layers, the street network and the plan —
each with its provenance (``real``, ``synthetic`` or ``mixed``, source, licence). The embedded
Cixi data (``data/``) is the default pack; any other folder with a manifest is audited the same
way (``qyx audit --region DIR``).

Public API:

* :func:`read_region` — read and validate the manifest only (fast; no data loaded);
* :func:`load_region` — read the manifest and load the whole pack as a
  :class:`qyx_geo.dataset.Dataset` (``Dataset.region`` holds the :class:`Region`);
* :func:`check_region` — load everything, return what is real, synthetic or missing, and the
  errors found, without raising (``qyx region check DIR``);
* :func:`default_region_dir` — the embedded pack (``data/`` or ``QYX_DATA_DIR``).

The manifest format is documented in docs/regions.md. Paths in it are relative to the pack folder
and may not leave it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from qyx_geo import _paths
from qyx_geo._errors import DataFileError, QyxGeoError
from qyx_geo.schema import FACILITY_LAYERS
from qyx_geo.services import service_ids

if TYPE_CHECKING:
    from qyx_geo.dataset import Dataset

__all__ = [
    "FILE_KEYS",
    "FORMAT_VERSION",
    "LEVELS",
    "MANIFEST_NAME",
    "STATUSES",
    "Region",
    "RegionCheck",
    "RegionFile",
    "check_region",
    "default_region_dir",
    "load_region",
    "plan_source",
    "read_region",
    "region_dir",
    "resolve_region",
]

logger = logging.getLogger(__name__)

#: File name of the manifest inside a pack folder.
MANIFEST_NAME = "region.toml"
#: Manifest format version this code reads and writes.
FORMAT_VERSION = 1
#: Provenance status of a file.
STATUSES = ("real", "synthetic", "mixed")
#: Unit levels a pack may declare (townships 9 digits, villages/communities 12 digits).
LEVELS = ("township", "village")
#: File keys of ``[files]``: required ones first; facility layers are ``facilities.<layer>``.
REQUIRED_FILES = ("outline", "townships", "units", "demand",
                  *(f"facilities.{layer}" for layer in FACILITY_LAYERS))
OPTIONAL_FILES = ("network", "plan")
FILE_KEYS = (*REQUIRED_FILES, *OPTIONAL_FILES)

_REGION_KEYS = {"code", "name_zh", "name_en", "crs", "levels", "province_zh", "prefecture_zh"}
_FILE_FIELDS = {"path", "status", "source", "licence", "note"}
_TOP_KEYS = {"format", "region", "population", "files", "synthetic"}
_CODE_RE = re.compile(r"^\d{6}$")
_CRS_RE = re.compile(r"^EPSG:\d{4,6}$")


@dataclasses.dataclass(frozen=True)
class RegionFile:
    """One file of a pack and its provenance.

    Attributes
    ----------
    key
        ``outline``, ``townships``, ``units``, ``demand``, ``facilities.<layer>``, ``network`` or
        ``plan``.
    path
        Absolute path (``None`` when the manifest lists none, for the optional keys).
    status
        ``real``, ``synthetic`` or ``mixed``.
    source
        Where the data come from (package and version, office, survey, generator).
    licence
        Licence or terms of use.
    note
        Anything a reader should know (accuracy, date, method).
    """

    key: str
    path: Path | None
    status: str
    source: str = ""
    licence: str = ""
    note: str = ""

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        """Return a JSON-ready dict; ``path`` relative to ``root`` when given."""
        path: str | None = None
        if self.path is not None:
            path = str(self.path)
            if root is not None:
                with contextlib.suppress(ValueError):  # outside the pack: keep absolute
                    path = self.path.relative_to(root).as_posix()
        return {"path": path, "status": self.status, "source": self.source,
                "licence": self.licence, "note": self.note}


@dataclasses.dataclass(frozen=True)
class Region:
    """A region pack's manifest, validated (no data loaded).

    Attributes
    ----------
    root
        The pack folder.
    code
        Official 6-digit county-level code (e.g. ``"330282"``).
    name_zh, name_en
        Names for titles and notices (Chinese, English).
    crs
        Metric CRS of the pack's distances (``"EPSG:4549"``).
    levels
        Unit levels, from :data:`LEVELS`.
    files
        File key → :class:`RegionFile` (read-only mapping).
    population
        ``{"total": int | None, "source": str}``: the resident total and where it comes from.
    province_zh, prefecture_zh
        Parent units, for titles and name matching (may be empty).
    """

    root: Path
    code: str
    name_zh: str
    name_en: str
    crs: str
    levels: tuple[str, ...]
    files: Mapping[str, RegionFile]
    population: Mapping[str, Any]
    province_zh: str = ""
    prefecture_zh: str = ""

    @property
    def manifest_path(self) -> Path:
        """The manifest file."""
        return self.root / MANIFEST_NAME

    @property
    def embedded(self) -> bool:
        """Whether this is the embedded default pack (``data/``)."""
        return self.root.resolve() == default_region_dir().resolve()

    @property
    def title(self) -> str:
        """The Chinese and English names, for titles."""
        return f"{self.name_zh} {self.name_en}".strip()

    def path(self, key: str) -> Path | None:
        """Return the path of file ``key`` (``None`` when the pack has none)."""
        entry = self.files.get(key)
        return None if entry is None else entry.path

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest as a JSON-ready dict (paths relative to the pack)."""
        return {"root": str(self.root), "code": self.code, "name_zh": self.name_zh,
                "name_en": self.name_en, "crs": self.crs, "levels": list(self.levels),
                "province_zh": self.province_zh, "prefecture_zh": self.prefecture_zh,
                "population": dict(self.population),
                "files": {k: f.to_dict(self.root) for k, f in self.files.items()}}


def default_region_dir() -> Path:
    """Return the embedded default pack's folder (the repository's ``data/``)."""
    return _paths.data_dir()


def region_dir(region: str | os.PathLike[str] | Region | None) -> Path:
    """Return the pack folder of ``region`` (a folder, its ``region.toml``, or ``None``)."""
    if isinstance(region, Region):
        return region.root
    if region is None:
        return default_region_dir()
    p = Path(region)
    return p.parent if p.name == MANIFEST_NAME else p


def _fail(where: str, what: str, fix: str) -> DataFileError:
    return DataFileError(f"{where}: {what}. {fix}")


def _text(table: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = table.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(where, f"{key!r} must be a non-empty text, got {value!r}",
                    f'Write e.g. {key} = "..." in the manifest.')
    return value.strip()


def _unknown(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise _fail(where, f"unknown key(s) {extra!r}",
                    f"Allowed keys are {sorted(allowed)!r}; check the spelling.")


def _file_entry(key: str, raw: Any, root: Path, where: str) -> RegionFile:
    if isinstance(raw, str):  # short form: key = "path"
        raw = {"path": raw}
    if not isinstance(raw, Mapping):
        raise _fail(where, f"[files.{key}] must be a table with path/status/source/licence, "
                           f"got {raw!r}", f'Write [files.{key}] path = "..." status = "real".')
    _unknown(raw, _FILE_FIELDS, f"{where} [files.{key}]")
    rel = _text(raw, "path", f"{where} [files.{key}]")
    p = (root / rel).resolve()
    try:
        p.relative_to(root.resolve())
    except ValueError:
        raise _fail(f"{where} [files.{key}]", f"path {rel!r} leaves the pack folder",
                    "Copy the file into the pack and give a path relative to it.") from None
    status = raw.get("status", "synthetic")
    if status not in STATUSES:
        raise _fail(f"{where} [files.{key}]", f"status must be one of {list(STATUSES)!r}, "
                    f"got {status!r}", 'Write status = "real" for observed data, "synthetic" '
                    'for generated data, "mixed" for both.')
    return RegionFile(key=key, path=p, status=str(status),
                      source=_text(raw, "source", where, required=False),
                      licence=_text(raw, "licence", where, required=False),
                      note=_text(raw, "note", where, required=False))


def read_region(region: str | os.PathLike[str] | None = None) -> Region:
    """Read and validate a pack's manifest (no data files are read).

    Parameters
    ----------
    region
        The pack folder or its ``region.toml`` (default: the embedded Cixi pack).

    Returns
    -------
    Region

    Raises
    ------
    DataFileError
        No manifest, bad TOML, unknown or missing keys, bad values, paths leaving the pack,
        missing files. The message names the manifest, the key and the fix.
    """
    root = region_dir(region)
    manifest = root / MANIFEST_NAME
    where = str(manifest)
    if not root.is_dir():
        raise _fail(str(root), "is not a folder",
                    "Give the folder of a region pack (with region.toml), e.g. regions/yuyao; "
                    "make one with `qyx region init CODE --out DIR`.")
    if not manifest.is_file():
        raise _fail(str(root), f"has no {MANIFEST_NAME}",
                    "A region pack needs a manifest; make one with `qyx region init CODE --out "
                    "DIR` or copy data/region.toml and edit it (docs/regions.md).")
    try:
        raw = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise _fail(where, f"is not valid UTF-8 TOML ({err})",
                    "Fix the line named; strings need double quotes.") from err
    _unknown(raw, _TOP_KEYS, where)
    if raw.get("format") != FORMAT_VERSION:
        raise _fail(where, f"format must be {FORMAT_VERSION}, got {raw.get('format')!r}",
                    f"Write format = {FORMAT_VERSION} at the top of the manifest.")
    reg = raw.get("region")
    if not isinstance(reg, Mapping):
        raise _fail(where, "has no [region] table", "Add [region] with code, name_zh, name_en, "
                    "crs and levels (docs/regions.md).")
    _unknown(reg, _REGION_KEYS, f"{where} [region]")
    code = str(reg.get("code", ""))
    if not _CODE_RE.match(code):
        raise _fail(f"{where} [region]", f"code must be the 6-digit county-level code, got "
                    f"{reg.get('code')!r}", 'Write e.g. code = "330282" (a string).')
    crs = _text(reg, "crs", f"{where} [region]").upper()
    if not _CRS_RE.match(crs):
        raise _fail(f"{where} [region]", f"crs must be a metric EPSG code like 'EPSG:4549', got "
                    f"{reg.get('crs')!r}", "Use the CGCS2000 3-degree Gauss-Krüger zone of the "
                    "county (EPSG:4534–4554) or a UTM zone.")
    levels = reg.get("levels", list(LEVELS))
    if (not isinstance(levels, list) or not levels or any(lv not in LEVELS for lv in levels)
            or "village" not in levels):
        raise _fail(f"{where} [region]", f"levels must list {list(LEVELS)!r} (village required), "
                    f"got {levels!r}", 'Write levels = ["township", "village"].')
    files_raw = raw.get("files")
    if not isinstance(files_raw, Mapping):
        raise _fail(where, "has no [files] table", "List the pack's files under [files.outline], "
                    "[files.townships], ... (docs/regions.md).")
    flat: dict[str, Any] = {}
    for key, value in files_raw.items():
        if key == "facilities":
            if not isinstance(value, Mapping):
                raise _fail(where, "[files.facilities] must hold one table per layer",
                            f"Write [files.facilities.nursery] etc. for {list(FACILITY_LAYERS)!r}.")
            for layer, entry in value.items():
                flat[f"facilities.{layer}"] = entry
        else:
            flat[key] = value
    # the registry's optional layers (schools, home-care stations, ...) may be listed too
    optional_layers = [f"facilities.{s}" for s in service_ids() if s not in FACILITY_LAYERS]
    unknown = sorted(set(flat) - set(FILE_KEYS) - set(optional_layers))
    if unknown:
        raise _fail(where, f"unknown file key(s) {unknown!r}",
                    f"Known keys: {list(FILE_KEYS)!r} (facility layers under [files.facilities]).")
    missing = [k for k in REQUIRED_FILES if k not in flat]
    if missing:
        raise _fail(where, f"lists no file for {missing!r}",
                    "Every pack needs an outline, townships, units, demand and the four facility "
                    "layers (an empty layer is a GeoJSON with no features); `qyx region init` "
                    "writes them all.")
    files = {k: _file_entry(k, flat[k], root, where) for k in (*FILE_KEYS, *optional_layers)
             if k in flat}
    absent = [f"{k}: {f.path}" for k, f in files.items() if f.path is not None
              and not f.path.exists()]
    if absent:
        raise _fail(where, f"names file(s) that do not exist: {absent!r}",
                    "Restore them or correct the paths in the manifest.")
    pop = raw.get("population", {})
    if not isinstance(pop, Mapping):
        raise _fail(where, "[population] must be a table", "Write [population] total = N, "
                    'source = "...".')
    _unknown(pop, {"total", "source", "year"}, f"{where} [population]")
    total = pop.get("total")
    if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total <= 0):
        raise _fail(f"{where} [population]", f"total must be a whole number > 0, got {total!r}",
                    "Write total = 1829488 (no quotes, no separators).")
    return Region(
        root=root, code=code, name_zh=_text(reg, "name_zh", f"{where} [region]"),
        name_en=_text(reg, "name_en", f"{where} [region]"), crs=crs, levels=tuple(levels),
        files=MappingProxyType(files),
        population=MappingProxyType({"total": total, "source": str(pop.get("source", "")),
                                     "year": pop.get("year")}),
        province_zh=_text(reg, "province_zh", where, required=False),
        prefecture_zh=_text(reg, "prefecture_zh", where, required=False))


#: Default file layout of a pack (the embedded one's): key → path relative to the folder.
DEFAULT_LAYOUT = {
    "outline": "boundaries/county_outline.geojson",
    "townships": "boundaries/townships.geojson",
    "units": "boundaries/villages.geojson",
    "demand": "boundaries/demand.csv",
    **{f"facilities.{layer}": f"facilities/{layer}.geojson" for layer in FACILITY_LAYERS},
}


def resolve_region(region: str | os.PathLike[str] | Region | None) -> Region:
    """Return the :class:`Region` of a pack, or of a bare folder in the default layout.

    A folder with ``region.toml`` is read with :func:`read_region`. A folder without one that
    holds ``boundaries/county_outline.geojson`` (the layout ``python -m qyx_geo.synth --out``
    writes) is read with :data:`DEFAULT_LAYOUT`, the code and name from its outline file, the
    default metric CRS and every file marked synthetic. Anything else is the manifest error.
    """
    if isinstance(region, Region):
        return region
    root = region_dir(region)
    if (root / MANIFEST_NAME).is_file() or not (root / DEFAULT_LAYOUT["outline"]).is_file():
        return read_region(root)
    import json

    from qyx_geo.schema import METRIC_CRS

    try:
        props = json.loads((root / DEFAULT_LAYOUT["outline"]).read_text(encoding="utf-8"))[
            "features"][0]["properties"]
    except (ValueError, KeyError, IndexError, TypeError):
        props = {}
    files = {key: RegionFile(key=key, path=root / rel, status="synthetic",
                             source="(no region.toml: default layout)")
             for key, rel in DEFAULT_LAYOUT.items()}
    logger.info("%s has no %s: read with the default layout", root, MANIFEST_NAME)
    return Region(root=root, code=str(props.get("adcode") or "000000"),
                  name_zh=str(props.get("name") or root.name), name_en=root.name,
                  crs=METRIC_CRS, levels=LEVELS, files=MappingProxyType(files),
                  population=MappingProxyType({"total": None, "source": "", "year": None}))


def plan_source(region: Region | None) -> str | Path | None:
    """Return what :func:`qyx_geo.audit.run_audit` takes as ``plan=`` for a region.

    ``"default"`` for no region or a pack whose plan is the embedded one, the plan file of any
    other pack, ``None`` for a pack without a plan (audited and ranked without verdicts).
    """
    if region is None:
        return "default"
    path = region.path("plan")
    if path is None:
        return None
    from qyx_geo.plan import default_plan_path

    return "default" if path.resolve() == default_plan_path().resolve() else path


def load_region(region: str | os.PathLike[str] | Region | None = None) -> Dataset:
    """Load a region pack as a :class:`~qyx_geo.dataset.Dataset` (everything but the network).

    Parameters
    ----------
    region
        The pack folder, its ``region.toml`` or a :class:`Region` (default: embedded Cixi).

    Returns
    -------
    Dataset
        With ``Dataset.region`` set; ``Dataset.provenance`` built from the files' rows and the
        manifest's sources.

    Examples
    --------
    >>> ds = load_region()
    >>> ds.region.code, len(ds.units)
    ('330282', 406)
    """
    from qyx_geo.dataset import dataset_from_region

    reg = region if isinstance(region, Region) else read_region(region)
    return dataset_from_region(reg)


@dataclasses.dataclass(frozen=True)
class RegionCheck:
    """What :func:`check_region` found.

    Attributes
    ----------
    root
        The pack folder.
    region
        The manifest (``None`` if it could not be read).
    files
        File key → ``{"path", "status", "source", "licence", "present"}`` (every key of
        :data:`FILE_KEYS`; missing optional files have ``present=False``).
    counts
        Townships, units, residents, demand points, facilities per layer (when loaded).
    errors
        One line per problem (empty when the pack is valid).
    """

    root: Path
    region: Region | None
    files: Mapping[str, Mapping[str, Any]]
    counts: Mapping[str, Any]
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether the pack loads without errors."""
        return not self.errors


def check_region(region: str | os.PathLike[str] | None = None) -> RegionCheck:
    """Validate a pack: read the manifest, load every file, report without raising.

    Parameters
    ----------
    region
        The pack folder or its manifest (default: the embedded pack).
    """
    root = region_dir(region)
    try:
        reg = read_region(root)
    except QyxGeoError as err:
        return RegionCheck(root=root, region=None, files={}, counts={}, errors=(str(err),))
    files: dict[str, Mapping[str, Any]] = {}
    for key in (*FILE_KEYS, *(k for k in reg.files if k not in FILE_KEYS)):
        entry = reg.files.get(key)
        if entry is None:
            files[key] = {"path": None, "status": "missing", "source": "", "licence": "",
                          "present": False}
        else:
            files[key] = {**entry.to_dict(reg.root), "present": True}
    errors: list[str] = []
    counts: dict[str, Any] = {}
    try:
        ds = load_region(reg)
    except QyxGeoError as err:
        errors.append(str(err))
    else:
        counts = {"townships": len(ds.townships), "units": len(ds.units),
                  "residents": ds.population, "demand_points": len(ds.demand),
                  "facilities": {k: len(v) for k, v in ds.facilities.items()}}
        declared = reg.population.get("total")
        if declared is not None and declared != ds.population:
            errors.append(f"{reg.manifest_path}: [population] total = {declared:,} but the demand "
                          f"points sum to {ds.population:,}; re-import the population table or "
                          "correct the total.")
    return RegionCheck(root=reg.root, region=reg, files=MappingProxyType(files),
                       counts=MappingProxyType(counts), errors=tuple(errors))
