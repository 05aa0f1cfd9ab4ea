"""Which regions a batch audits: pack folders, folders of packs, county codes; ids and content keys.

A county code names the embedded pack (its own code), an existing pack folder ``<packs>/<code>``,
or — with a population for it — a pack that the worker generates with
:func:`qyx_geo.packs.init.init_region` before auditing it (``qyx region init`` inside the task).
The population is never invented: a code without a pack and without a population is an error
that says how to give one (``--populations FILE``: ``code,population,source``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from qyx_geo import __version__
from qyx_geo._errors import DataFileError, SettingsError

__all__ = ["InitSpec", "RegionSpec", "find_regions", "read_populations", "region_id",
           "region_key", "resolve_regions"]

_ID_RE = re.compile(r"[^0-9A-Za-z_\-\u4e00-\u9fff]+")
_CODE_RE = re.compile(r"\d{6}")


@dataclasses.dataclass(frozen=True)
class InitSpec:
    """How a worker generates a missing pack: county code, resident total and its source."""

    code: str
    population: int
    source: str


@dataclasses.dataclass(frozen=True)
class RegionSpec:
    """One region of a batch: its pack folder and, if it must be generated first, how."""

    pack: Path
    init: InitSpec | None = None


def _is_pack(folder: Path) -> bool:
    from qyx_geo.region import DEFAULT_LAYOUT, MANIFEST_NAME

    return (folder / MANIFEST_NAME).is_file() or (folder / DEFAULT_LAYOUT["outline"]).is_file()


def read_populations(path: str | os.PathLike[str]) -> dict[str, InitSpec]:
    """Read a ``code,population,source`` CSV (UTF-8) of county resident totals.

    Raises
    ------
    DataFileError
        Missing file or columns, a bad code, a population that is not a whole number > 0, an
        empty source, a code listed twice — naming the row and the fix.
    """
    import pandas as pd

    p = Path(path)
    try:
        table = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError) as err:
        msg = f"Populations file {str(p)!r} cannot be read ({err}); give a UTF-8 CSV."
        raise DataFileError(msg) from err
    missing = [c for c in ("code", "population", "source") if c not in table.columns]
    if missing:
        msg = (f"Populations file {str(p)!r} lacks column(s) {missing!r}; the header must be "
               "code,population,source (e.g. 330281,1254700,第七次全国人口普查公报).")
        raise DataFileError(msg)
    out: dict[str, InitSpec] = {}
    for row, rec in enumerate(table.to_dict("records"), start=2):
        code, pop, source = (str(rec[c]).strip() for c in ("code", "population", "source"))
        where = f"{p.name} row {row}"
        if not _CODE_RE.fullmatch(code):
            msg = f"{where}: code {code!r} is not a 6-digit county code, e.g. 330281."
            raise DataFileError(msg)
        if not pop.isdigit() or int(pop) <= 0:
            msg = (f"{where}: population {pop!r} of {code} must be a whole number > 0 "
                   "without separators, e.g. 1254700.")
            raise DataFileError(msg)
        if not source:
            msg = f"{where}: the population of {code} has no source; say where it comes from."
            raise DataFileError(msg)
        if code in out:
            msg = f"{where}: code {code} is listed twice; keep one row per county."
            raise DataFileError(msg)
        out[code] = InitSpec(code=code, population=int(pop), source=source)
    return out


def resolve_regions(specs: Iterable[str | os.PathLike[str]], *, packs_dir: Path,
                    populations: Mapping[str, InitSpec] | None = None) -> list[RegionSpec]:
    """Resolve region specifications to packs, in order, without duplicates.

    Parameters
    ----------
    specs
        Pack folders, folders whose sub-folders are packs, or 6-digit county codes: the embedded
        pack's code, a code with a pack in ``packs_dir/<code>``, or a code in ``populations``
        (generated there by the worker).
    packs_dir
        Where packs named by code live and are generated (``<out>/packs``).
    populations
        Resident totals of the codes to generate.

    Raises
    ------
    SettingsError
        A specification that is none of these (named, with the fix).
    """
    from qyx_geo.region import default_region_dir, resolve_region

    found: list[RegionSpec] = []
    for spec in specs:
        text = os.fspath(spec).strip()
        folder = Path(text)
        if _CODE_RE.fullmatch(text) and not folder.exists():
            embedded = default_region_dir()
            generated = packs_dir / text
            if _is_pack(generated):
                found.append(RegionSpec(generated))
            elif resolve_region(embedded).code == text:
                found.append(RegionSpec(embedded))
            elif populations and text in populations:
                found.append(RegionSpec(generated, init=populations[text]))
            else:
                msg = (f"Region {text!r}: no pack for this code. Give its resident total with "
                       f"--populations FILE (code,population,source) to generate one, or build "
                       f"it with `qyx region init {text} --out regions/{text} --population N` "
                       "and pass the folder.")
                raise SettingsError(msg)
        elif folder.is_dir() and _is_pack(folder):
            found.append(RegionSpec(folder))
        elif folder.is_dir():
            packs = sorted(p for p in folder.iterdir() if p.is_dir() and _is_pack(p))
            if not packs:
                msg = (f"Region folder {text!r} is not a region pack and holds none "
                       "(a pack has a region.toml); give pack folders or codes.")
                raise SettingsError(msg)
            found.extend(RegionSpec(p) for p in packs)
        else:
            msg = f"Region {text!r} does not exist; give a pack folder or a 6-digit county code."
            raise SettingsError(msg)
    unique: dict[Path, RegionSpec] = {}
    for item in found:
        unique.setdefault(item.pack.resolve(), dataclasses.replace(item, pack=item.pack.resolve()))
    return list(unique.values())


def find_regions(specs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Resolve specifications to existing pack folders (see :func:`resolve_regions`).

    Codes name the embedded pack only here (no output folder, no populations).
    """
    return [s.pack for s in resolve_regions(specs, packs_dir=Path(os.devnull))]


def region_id(pack: Path) -> str:
    """Return a folder-safe id for a pack: its folder name (the embedded pack: its code)."""
    from qyx_geo.region import default_region_dir, resolve_region

    if pack.resolve() == default_region_dir().resolve():
        return resolve_region(pack).code
    name = _ID_RE.sub("_", pack.name).strip("._") or "region"
    return name[:80]


def region_key(pack: str | os.PathLike[str], options: Any) -> str:
    """Return the content hash of a region's inputs and the batch settings (SHA-256, hex).

    Every file under ``pack`` (relative path and bytes, hidden files excepted), the options
    (``options.to_dict()``) and the qyx_geo version go in: any change to a file, a setting or
    the code's version gives a new key, and an unchanged region keeps its key wherever the pack
    is moved.
    """
    root = Path(pack)
    digest = hashlib.sha256()
    digest.update(json.dumps({"options": options.to_dict(), "version": __version__},
                             sort_keys=True).encode())
    files = sorted(p for p in root.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()
