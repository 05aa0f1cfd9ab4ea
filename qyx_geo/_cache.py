"""One cache for everything derived from input files: processed networks, engine arrays, roads.

Every entry is a single numpy ``.npz`` file read with ``allow_pickle=False``: plain numeric
arrays, text as UTF-8 bytes, geometries as WKB bytes. Nothing in a cache file can execute code
when it is read, so a folder others can write to (a shared drive, ``QYX_CACHE_DIR``) is no risk.

One invalidation scheme for all kinds (:func:`cache_key`): the key is a SHA-256 over the kind,
the kind's format version, the *content* hash of the source file (never its path or mtime), the
options and the versions of the packages that shape the result. A changed file, option, format or
package version therefore names another entry; an entry is never served stale.

Integrity: each file holds its key and a SHA-256 of its payload. A missing, truncated,
bit-flipped or foreign file (wrong key, old format, a pickle at an old path) is reported with a
warning, removed and rebuilt by the caller; reading a cache never fails a run. Writing one
never does either: an unwritable cache folder costs speed only (a warning says so).

Layout: ``cache_dir()/<kind>/<label>-<key>.npz``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.metadata
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from qyx_geo import __version__
from qyx_geo._io import atomic_path
from qyx_geo._paths import cache_dir

__all__ = [
    "CACHE_FORMAT",
    "Entry",
    "cache_key",
    "clear",
    "entries",
    "entry_path",
    "file_sha256",
    "frame_from_arrays",
    "frame_to_arrays",
    "from_text",
    "get_or_build",
    "load",
    "pack_bytes",
    "store",
    "to_text",
    "unpack_bytes",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Arrays = dict[str, npt.NDArray[Any]]

#: Version of the container layout below (header array, payload digest). Bump on change.
CACHE_FORMAT = 1
#: Packages whose versions change what gets cached (parsing, simplification, geometry).
_PACKAGES = ("numpy", "networkx", "osmnx", "shapely", "pyproj")
_HEADER = "__qyx_cache__"
_SUFFIX = ".npz"
#: age after which a temporary file in a cache folder is a leftover of a killed run
_STALE_TMP_S = 3600.0


@dataclasses.dataclass(frozen=True)
class Entry:
    """One cache file and its header (``meta`` is what the writer stored, e.g. node counts)."""

    path: Path
    kind: str
    size_bytes: int
    created: str
    meta: dict[str, Any]


def _versions() -> dict[str, str]:
    out = {"qyx_geo": __version__, "cache_format": str(CACHE_FORMAT)}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "-"
    return out


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int, inode: int) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of a file's content (hashed once per version of the file per process).

    Raises
    ------
    OSError
        The file cannot be read.
    """
    p = Path(path).resolve()
    st = p.stat()
    return _sha256_of(str(p), st.st_size, st.st_mtime_ns, st.st_ino)


def cache_key(kind: str, identity: Mapping[str, Any], *, version: int = 1) -> str:
    """Return the key of a cache entry: SHA-256 (24 hex digits) over everything it depends on.

    Parameters
    ----------
    kind
        The cache's name, also its folder (``"networks"``, ``"engine"``, ``"roads"``).
    identity
        What the result is computed from: the source's content hash (:func:`file_sha256`) or
        query, and every option. Must be JSON-serialisable.
    version
        The kind's own format version; bump it when the cached content changes shape.
    """
    text = json.dumps({"kind": kind, "version": version, **identity, **_versions()},
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def entry_path(kind: str, label: str, key: str) -> Path:
    """Return ``cache_dir()/kind/label-key.npz`` (``label`` made file-name safe)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:60]
    return cache_dir() / kind / f"{safe}-{key}{_SUFFIX}"


def to_text(text: str) -> npt.NDArray[np.uint8]:
    """Return ``text`` as a UTF-8 byte array (text arrays without pickle, any length)."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def from_text(array: npt.NDArray[np.uint8]) -> str:
    """Inverse of :func:`to_text`."""
    return bytes(np.asarray(array, dtype=np.uint8)).decode("utf-8")


def pack_bytes(items: Iterable[bytes]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Concatenate byte strings (e.g. WKB) into one array plus ``len + 1`` offsets."""
    items = list(items)
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in items], out=offsets[1:])
    return np.frombuffer(b"".join(items), dtype=np.uint8), offsets


def unpack_bytes(data: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64]) -> list[bytes]:
    """Inverse of :func:`pack_bytes`."""
    buf = bytes(np.asarray(data, dtype=np.uint8))
    bounds = np.asarray(offsets, dtype=np.int64).tolist()
    if bounds and (bounds[0] != 0 or bounds[-1] != len(buf)):
        msg = f"byte offsets {bounds[0]}..{bounds[-1]} do not span the {len(buf)} bytes"
        raise ValueError(msg)
    return [buf[a:b] for a, b in itertools.pairwise(bounds)]


def _digest(arrays: Mapping[str, npt.NDArray[Any]]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.data)
    return h.hexdigest()


def store(path: Path, key: str, arrays: Mapping[str, npt.NDArray[Any]], *,
          meta: Mapping[str, Any] | None = None) -> bool:
    """Write a cache entry atomically; return whether it was written.

    An unwritable cache folder (read-only, full disk) logs a warning and returns ``False``: a
    cache that cannot be written costs time, never the run.
    """
    if _HEADER in arrays or any(a.dtype == object for a in arrays.values()):
        msg = f"cache arrays must be plain (no object dtype, no {_HEADER!r}): {sorted(arrays)}"
        raise ValueError(msg)
    header = {"key": key, "format": CACHE_FORMAT, "digest": _digest(arrays),
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "meta": dict(meta or {})}
    _remove_stale_temporaries(path.parent)
    members: dict[str, Any] = {_HEADER: to_text(json.dumps(header, ensure_ascii=False)),
                               **arrays}
    try:
        with atomic_path(path) as tmp, tmp.open("wb") as fh:
            np.savez(fh, **members)
    except OSError as err:
        log.warning("could not write the cache file %s (%s); the run goes on uncached. Set "
                    "QYX_CACHE_DIR to a writable folder with free space", path, err)
        return False
    return True


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files of writers killed over an hour ago (a live writer is younger)."""
    if not folder.is_dir():
        return
    cutoff = time.time() - _STALE_TMP_S
    for tmp in folder.glob(".*.tmp*"):
        with contextlib.suppress(OSError):
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                log.info("removed the leftover %s of an interrupted run", tmp)


def _read_header(z: Any, path: Path) -> dict[str, Any]:
    header = json.loads(from_text(z[_HEADER]))
    if not isinstance(header, dict) or header.get("format") != CACHE_FORMAT:
        msg = f"{path.name}: not a qyx_geo cache file of format {CACHE_FORMAT}"
        raise ValueError(msg)
    return header


def _discard(path: Path, reason: object) -> None:
    log.warning("缓存文件损坏，已删除并重建 / cache file %s is unusable (%s); it is removed and "
                "rebuilt", path, reason)
    with contextlib.suppress(OSError):
        path.unlink()


def load(path: Path, key: str) -> Arrays | None:
    """Return the arrays of a cache entry, or ``None`` if missing or unusable (then removed).

    The file is read with ``allow_pickle=False``; its stored key and payload digest must match.
    """
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
            header = _read_header(z, path)
            arrays = {name: z[name] for name in z.files if name != _HEADER}
        if header.get("key") != key:
            msg = f"stored key {header.get('key')!r} is not {key!r}"
            raise ValueError(msg)
        if header.get("digest") != _digest(arrays):
            msg = "payload digest mismatch (truncated or altered file)"
            raise ValueError(msg)
    except Exception as err:
        _discard(path, err)
        return None
    return arrays


def get_or_build(kind: str, label: str, key: str, *, build: Callable[[], T],
                 encode: Callable[[T], Mapping[str, npt.NDArray[Any]] | None],
                 decode: Callable[[Arrays], T],
                 meta: Callable[[T], Mapping[str, Any]] | None = None,
                 use_cache: bool = True) -> T:
    """Return the cached value of ``kind``/``key``, or build, store and return it.

    Parameters
    ----------
    kind, label, key
        Where the entry lives (:func:`entry_path`); ``key`` from :func:`cache_key`.
    build
        Computes the value on a miss.
    encode
        Value -> plain arrays, or ``None`` when this value cannot be cached (then it is not).
    decode
        Arrays -> value. Any exception here counts as a damaged entry: warning, rebuild.
    meta
        Small JSON-able facts to list with :func:`entries` (counts, source).
    use_cache
        ``False`` skips reading and writing.
    """
    path = entry_path(kind, label, key)
    if use_cache and (arrays := load(path, key)) is not None:
        try:
            value = decode(arrays)
        except Exception as err:
            _discard(path, err)
        else:
            log.info("%s loaded from cache %s", kind, path)
            return value
    value = build()
    if use_cache:
        encoded = encode(value)
        if encoded is not None and store(path, key, encoded,
                                         meta=meta(value) if meta else None):
            log.info("%s cached in %s", kind, path)
    return value


def entries(kind: str) -> list[Entry]:
    """Return the readable entries of one cache kind, newest first (only headers are read)."""
    folder = cache_dir() / kind
    out = []
    for path in sorted(folder.glob(f"*{_SUFFIX}")) if folder.is_dir() else []:
        try:
            with path.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
                header = _read_header(z, path)
        except Exception:
            continue
        out.append(Entry(path=path, kind=kind, size_bytes=path.stat().st_size,
                         created=str(header.get("created", "")),
                         meta=dict(header.get("meta") or {})))
    return sorted(out, key=lambda e: e.created, reverse=True)


def clear(kind: str) -> int:
    """Delete every file of one cache kind (also leftovers of older formats); return the count."""
    folder = cache_dir() / kind
    if not folder.is_dir():
        return 0
    files = [p for p in folder.rglob("*") if p.is_file()]
    for p in files:
        p.unlink()
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        d.rmdir()
    folder.rmdir()
    return len(files)


def frame_to_arrays(frame: Any) -> Arrays | None:
    """Return a GeoDataFrame of numeric/boolean/text columns as arrays (``None`` if other).

    Geometries are stored as WKB, the CRS as its WKT, text columns as JSON.
    """
    import shapely

    names, out = [], {}
    for i, name in enumerate(c for c in frame.columns if c != frame.geometry.name):
        col = frame[name]
        if col.dtype.kind in "biuf":
            out[f"col{i}"] = col.to_numpy()
            names.append([str(name), "array"])
        elif col.map(lambda v: isinstance(v, str)).all():
            out[f"col{i}"] = to_text(json.dumps(col.tolist(), ensure_ascii=False))
            names.append([str(name), "text"])
        else:
            return None
    out["columns"] = to_text(json.dumps(names, ensure_ascii=False))
    out["crs"] = to_text(frame.crs.to_wkt() if frame.crs is not None else "")
    wkb = shapely.to_wkb(frame.geometry.to_numpy()).tolist()
    out["geometry_null"] = np.array([b is None for b in wkb], dtype=bool)
    out["geometry_wkb"], out["geometry_offsets"] = pack_bytes(b or b"" for b in wkb)
    return out


def frame_from_arrays(arrays: Arrays) -> Any:
    """Inverse of :func:`frame_to_arrays`."""
    import geopandas as gpd
    import shapely

    wkb = unpack_bytes(arrays["geometry_wkb"], arrays["geometry_offsets"])
    null = arrays["geometry_null"].tolist()
    geoms = shapely.from_wkb([None if n else b for b, n in zip(wkb, null, strict=True)])
    data = {}
    for i, (name, kind) in enumerate(json.loads(from_text(arrays["columns"]))):
        value = arrays[f"col{i}"]
        data[name] = json.loads(from_text(value)) if kind == "text" else value
        if len(data[name]) != len(geoms):
            msg = f"column {name!r} has {len(data[name])} rows, geometry {len(geoms)}"
            raise ValueError(msg)
    crs = from_text(arrays["crs"]) or None
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)
