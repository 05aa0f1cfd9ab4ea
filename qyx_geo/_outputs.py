"""Output sets: a run's files are staged, then committed into the output folder as one transaction.

A run (``qyx audit``, an intake) owns *its* files in the output folder, never the folder: each
set (``"audit"``, ``"intake:canteen"``…) is listed with the SHA-256 of every file in the folder's
manifest ``.qyx-outputs.json``. :func:`output_set` yields a private staging folder inside the
output folder (same file system, so moving a file in is a rename); when the run's block
succeeded, :func:`_commit`

1. writes a journal ``.qyx-commit.json`` (what will move where),
2. moves the files it replaces, and the files of its previous run that this run no longer writes
   (``--no-maps``, fewer services), into a backup folder,
3. renames the new files and the new manifest into place,
4. deletes the journal and the backup.

Any failure in 2–3 (a file held open by Excel, a full disk) moves everything back: the folder is
exactly as before and the error names the file. A run killed during the commit leaves the
journal, and the next run into the folder rolls it back (or, if the new manifest was already in
place, finishes it) before it starts. Leftovers of killed runs (staging and backup folders,
``*.tmp.*`` files of :mod:`qyx_geo._io`, the ``.qyx-maps.*`` folders of older versions) are
removed at the start of every set.

Files the tool did not write are never deleted: only files listed in the previous manifest of the
same set are removed, and only if their content is still what the tool wrote (an edited file is
kept, with a warning).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from qyx_geo._errors import DataFileError, OutputError

__all__ = ["MANIFEST", "OutputSet", "output_set", "remove_leftovers"]

log = logging.getLogger(__name__)

MANIFEST = ".qyx-outputs.json"
_JOURNAL = ".qyx-commit.json"
_STAGING = ".qyx-staging."
_BACKUP = ".qyx-old."
#: leftovers whose owner cannot be checked (no pid in the name, or not POSIX) are removed once
#: they are this old; a live run finishes its writes long before
_STALE_S = 3600.0


@dataclasses.dataclass
class OutputSet:
    """One output set being written: write every file at :meth:`path`.

    ``written`` lists the final paths once the set was committed.
    """

    folder: Path
    name: str
    staging: Path
    written: list[Path] = dataclasses.field(default_factory=list)

    def path(self, relpath: str) -> Path:
        """Return where to write output ``relpath`` (e.g. ``"maps/canteen.html"``) now.

        Raises
        ------
        DataFileError
            ``relpath`` is absolute or leaves the output folder.
        """
        rel = PurePosixPath(relpath.replace("\\", "/"))
        if rel.is_absolute() or not rel.parts or any(p in ("..", "") for p in rel.parts) \
                or rel.parts[0].startswith(".qyx"):
            msg = (f"output name {relpath!r} would leave the output folder; use a plain file "
                   "name such as 'canteen.geojson'")
            raise DataFileError(msg)
        target = self.staging.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def subfolder(self, relpath: str) -> Path:
        """Return (and create) a staged subfolder for a writer that fills a folder (maps)."""
        folder = self.path(f"{relpath}/_").parent
        folder.mkdir(exist_ok=True)
        return folder

    def files(self) -> list[str]:
        """Return the staged files as POSIX paths relative to the output folder, sorted."""
        return sorted(p.relative_to(self.staging).as_posix()
                      for p in self.staging.rglob("*") if p.is_file())


def _token() -> str:
    return f"{os.getpid()}.{secrets.token_hex(4)}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pid_alive(pid: int) -> bool | None:
    """Return whether process ``pid`` runs (``None``: cannot tell on this platform)."""
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True


#: temporary files of :func:`qyx_geo._io.atomic_path`: ``.<name>.qyx<pid>-<random>.tmp<suffix>``
#: (and ``.<name>.<8 random>.tmp<suffix>`` of versions before the pid was part of the name)
_TMP = re.compile(r"^\..+\.(?:qyx(?P<pid>\d+)-[a-z0-9_]+|[a-z0-9_]{8})\.tmp(?:\.[^.]+)?$")
_OWNED_DIR = re.compile(r"^\.qyx-(?:staging|old)\.(?P<pid>\d+)\.[0-9a-f]+$|^\.qyx-maps\.")


def _abandoned(path: Path, pid: str | None) -> bool:
    """Return whether a leftover's writer is gone (its pid is dead, or unknown and it is old)."""
    if pid == str(os.getpid()):
        return False
    if path.name.startswith(".qyx-maps."):  # only versions before output sets made these
        return True
    alive = _pid_alive(int(pid)) if pid else None
    if alive is not None:
        return not alive
    try:
        return time.time() - path.stat().st_mtime > _STALE_S
    except OSError:
        return False


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete staging/backup folders and temporary files of killed runs in ``folder``.

    Only names this package creates are touched. A pending commit journal is resolved first
    (see the module doc). Returns what was removed.
    """
    _recover(folder)
    removed = []
    for path in [*folder.glob(".*"), *folder.glob("*/.*")]:
        match = (_OWNED_DIR if path.is_dir() and path.parent == folder else _TMP).match(path.name)
        if match is None or not _abandoned(path, match.groupdict().get("pid")):
            continue
        with contextlib.suppress(OSError):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
            log.info("removed %s, left by an interrupted run", path)
    return removed


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        return {"format": 1, "sets": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest.get("sets"), dict):
            raise ValueError("no 'sets'")
    except (OSError, ValueError, AttributeError) as err:
        log.warning("ignoring the unreadable output manifest %s (%s): files of earlier runs are "
                    "kept, not cleaned up", path, err)
        return {"format": 1, "sets": {}}
    return manifest


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    src.replace(dst)


def _rollback(folder: Path, staging: Path, backup: Path, moved_new: list[str],
              moved_old: list[str]) -> None:
    for rel in reversed(moved_new):
        with contextlib.suppress(OSError):
            _move(folder / rel, staging / rel)
    for rel in reversed(moved_old):
        try:
            _move(backup / rel, folder / rel)
        except OSError as err:  # pragma: no cover - the backup is beside it, same file system
            log.error("could not restore %s from %s: %s", folder / rel, backup / rel, err)


def _recover(folder: Path) -> None:
    """Resolve the journal of a commit that was killed half-way (roll back, or finish)."""
    path = folder / _JOURNAL
    if not path.is_file():
        return
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
        pid = str(journal["pid"])
        staging, backup = folder / journal["staging"], folder / journal["backup"]
        new, old = list(journal["new"]), list(journal["old"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("ignoring the unreadable commit journal %s (%s)", path, err)
        with contextlib.suppress(OSError):
            path.unlink()
        return
    if pid != str(os.getpid()) and pid.isdigit() and _pid_alive(int(pid)):
        msg = (f"另一个 qyx 进程 (pid {pid}) 正在写入 {str(folder)!r} / another qyx run (pid "
               f"{pid}) is writing into {str(folder)!r}; wait for it or choose another --out")
        raise OutputError(msg)
    if _read_manifest(folder).get("run") == journal.get("run"):
        log.info("finishing the interrupted commit into %s", folder)  # new manifest in place
    else:
        log.warning("rolling back the interrupted commit into %s", folder)
        # a new file is in place once it left the staging folder (renames are atomic)
        moved_new = [rel for rel in new
                     if (folder / rel).exists() and not (staging / rel).exists()]
        moved_old = [rel for rel in old if (backup / rel).exists()]
        _rollback(folder, staging, backup, moved_new, moved_old)
    for leftover in (staging, backup):
        shutil.rmtree(leftover, ignore_errors=True)
    path.unlink()


def _commit(out: OutputSet) -> list[Path]:
    folder, staging = out.folder, out.staging
    new = [rel for rel in out.files() if rel != MANIFEST]
    manifest = _read_manifest(folder)
    before: dict[str, str] = dict(manifest["sets"].get(out.name, {}).get("files", {}))
    others = {rel for name, s in manifest["sets"].items() if name != out.name
              for rel in s.get("files", {})}
    stale = []
    for rel in sorted(set(before) - set(new) - others):
        target = folder / rel
        if not target.is_file():
            continue
        if _sha256(target) == before[rel]:
            stale.append(rel)
        else:
            log.warning("kept %s: written by an earlier run, but changed since", target)
    replaced = [rel for rel in new if (folder / rel).exists()]
    run = secrets.token_hex(8)
    manifest["run"] = run
    manifest["sets"][out.name] = {
        "files": {rel: _sha256(staging / rel) for rel in new},
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1),
                                    encoding="utf-8")
    backup = folder / f"{_BACKUP}{_token()}"
    _recover(folder)  # another run's commit since we started: finished, rolled back or refused
    journal = json.dumps(
        {"pid": os.getpid(), "run": run, "set": out.name, "staging": staging.name,
         "backup": backup.name, "new": [*new, MANIFEST], "old": [*stale, *replaced, MANIFEST]},
        ensure_ascii=False)
    try:  # exclusive: two runs committing into one folder at once must not share a journal
        with (folder / _JOURNAL).open("x", encoding="utf-8") as fh:
            fh.write(journal)
            fh.flush()
            os.fsync(fh.fileno())
    except FileExistsError:
        msg = (f"另一个 qyx 进程正在写入 {str(folder)!r} / another qyx run is committing into "
               f"{str(folder)!r}; wait for it or choose another --out")
        raise OutputError(msg) from None
    moved_old: list[str] = []
    moved_new: list[str] = []
    try:
        for rel in [*stale, *replaced, MANIFEST]:
            if (folder / rel).exists():
                _move(folder / rel, backup / rel)
                moved_old.append(rel)
        for rel in [*new, MANIFEST]:  # the manifest last: it marks the commit as done
            _move(staging / rel, folder / rel)
            moved_new.append(rel)
    except BaseException as err:  # Ctrl-C too: never leave a half-swapped folder
        _rollback(folder, staging, backup, moved_new, moved_old)
        (folder / _JOURNAL).unlink()
        shutil.rmtree(backup, ignore_errors=True)
        if not isinstance(err, OSError):
            raise
        where = err.filename or folder
        msg = (f"无法替换 {where} / could not replace {where}: {err.strerror or err}. Close the "
               "file if it is open (e.g. in Excel), free disk space or choose another --out, "
               "then run again; the folder was left as it was.")
        raise OutputError(msg) from err
    (folder / _JOURNAL).unlink()
    shutil.rmtree(backup, ignore_errors=True)
    for rel in stale:  # folders emptied by removing the earlier run's files (e.g. maps/)
        parent = (folder / rel).parent
        with contextlib.suppress(OSError):
            while parent != folder and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    return [folder / rel for rel in new]


@contextlib.contextmanager
def output_set(folder: str | os.PathLike[str], name: str) -> Iterator[OutputSet]:
    """Stage the files of output set ``name``; commit them into ``folder`` if the block succeeds.

    Write every file at ``staged.path("relative/name")`` inside the block. On success the set
    replaces the folder's previous files of the same set (see the module doc); on an exception
    nothing in ``folder`` changes. After the block, ``staged.written`` lists the final paths.

    Raises
    ------
    DataFileError
        ``folder`` exists and is not a folder.
    OutputError
        The commit failed (nothing changed) or another run is committing into ``folder``.
    """
    out = Path(folder)
    if out.exists() and not out.is_dir():
        msg = (f"输出位置 {str(out)!r} 是文件而不是文件夹 / the output {str(out)!r} is a file, "
               "not a folder; choose another --out")
        raise DataFileError(msg)
    out.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out)
    staging = out / f"{_STAGING}{_token()}"
    staging.mkdir()
    staged = OutputSet(folder=out, name=name, staging=staging)
    try:
        yield staged
        staged.written = _commit(staged)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
