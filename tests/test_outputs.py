"""Output sets (qyx_geo._outputs): staged, committed together, rolled back, cleaned up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from qyx_geo import _outputs
from qyx_geo._errors import DataFileError, OutputError
from qyx_geo._outputs import MANIFEST, output_set

ROOT = Path(__file__).resolve().parents[1]


def _write(folder: Path, name: str, files: dict[str, str]) -> list[Path]:
    with output_set(folder, name) as staged:
        for rel, text in files.items():
            staged.path(rel).write_text(text, encoding="utf-8")
    return staged.written


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_run_replaces_its_own_files_only(tmp_path):
    out = tmp_path / "out"
    _write(out, "audit", {"a.csv": "1", "maps/x.html": "x", "maps/y.html": "y"})
    _write(out, "intake:canteen", {"canteen.geojson": "{}"})
    (out / "mine.txt").write_text("the user's own file", encoding="utf-8")
    (out / "maps" / "notes.txt").write_text("user notes", encoding="utf-8")
    written = _write(out, "audit", {"a.csv": "2"})  # like --no-maps
    assert written == [out / "a.csv"]
    assert _snapshot(out).keys() == {"a.csv", "canteen.geojson", "mine.txt", "maps/notes.txt",
                                     MANIFEST}
    assert (out / "a.csv").read_text(encoding="utf-8") == "2"
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert set(manifest["sets"]) == {"audit", "intake:canteen"}
    assert set(manifest["sets"]["audit"]["files"]) == {"a.csv"}


def test_an_emptied_maps_folder_goes_and_an_edited_file_stays(tmp_path, caplog):
    out = tmp_path / "out"
    _write(out, "audit", {"a.csv": "1", "maps/x.html": "x", "maps/y.html": "y"})
    (out / "maps" / "y.html").write_text("edited by hand", encoding="utf-8")
    _write(out, "audit", {"a.csv": "1"})
    assert not (out / "maps" / "x.html").exists()
    assert (out / "maps" / "y.html").read_text(encoding="utf-8") == "edited by hand"
    assert "changed since" in caplog.text
    (out / "maps" / "y.html").unlink()
    _write(out, "audit", {"a.csv": "1", "maps/x.html": "x"})
    _write(out, "audit", {"a.csv": "1"})
    assert not (out / "maps").exists()  # emptied by the tool, removed


def test_failed_rename_rolls_everything_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _write(out, "audit", {"a.csv": "old a", "b.xlsx": "old b", "maps/x.html": "old x"})
    before = _snapshot(out)
    real = Path.replace

    def locked(self, target):
        if Path(target).name == "b.xlsx" and ".qyx-staging." in str(self):
            raise PermissionError(13, "Permission denied (open in Excel)", str(target))
        return real(self, target)

    monkeypatch.setattr(Path, "replace", locked)
    with pytest.raises(OutputError, match=r"b\.xlsx.*Close the file"):
        _write(out, "audit", {"a.csv": "new a", "b.xlsx": "new b", "c.json": "new c"})
    assert _snapshot(out) == before  # old a beside old b, nothing new, nothing lost
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != MANIFEST]


def test_failure_inside_the_block_changes_nothing(tmp_path):
    out = tmp_path / "out"
    _write(out, "audit", {"a.csv": "old"})
    before = _snapshot(out)
    with pytest.raises(ZeroDivisionError), output_set(out, "audit") as staged:
        staged.path("a.csv").write_text("new", encoding="utf-8")
        1 / 0  # noqa: B018
    assert _snapshot(out) == before


_KILLER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from qyx_geo import _outputs
    real, moves = _outputs._move, []
    def dying(src, dst):
        moves.append(dst)
        if len(moves) == int(sys.argv[2]):
            os._exit(9)  # killed: no finally, no rollback
        real(src, dst)
    _outputs._move = dying
    with _outputs.output_set(Path(sys.argv[1]), "audit") as staged:
        for rel in ("a.csv", "b.xlsx", "c.json", "maps/x.html"):
            staged.path(rel).write_text("new " + rel, encoding="utf-8")
""")


@pytest.mark.parametrize("after_moves", [1, 3, 5, 8])
def test_a_run_killed_mid_commit_is_rolled_back_by_the_next(tmp_path, after_moves):
    out = tmp_path / "out"
    _write(out, "audit", {"a.csv": "old a", "b.xlsx": "old b", "maps/y.html": "old y"})
    before = _snapshot(out)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(out), str(after_moves)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 9, proc.stderr
    assert (out / ".qyx-commit.json").exists()  # the journal of the half-done commit
    _outputs.remove_leftovers(out)  # what the next run does first
    assert _snapshot(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != MANIFEST]


def test_leftovers_of_killed_runs_are_removed_others_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = 2**22 + 12345  # above Linux's default pid_max: no such process
    live = os.getppid()
    leftovers = [out / f".qyx-staging.{dead}.ab12", out / ".qyx-maps.k3j2_x"]
    for d in leftovers:
        (d / "maps").mkdir(parents=True)
    old_tmp = out / ".summary.json.x7k2m9qa.tmp.json"  # atomic temp of an older version
    old_tmp.write_text("{", encoding="utf-8")
    os.utime(old_tmp, (time.time() - 7200, time.time() - 7200))
    dead_tmp = out / "maps" / f".x.html.qyx{dead}-q1w2e3.tmp.html"
    dead_tmp.parent.mkdir()
    dead_tmp.write_text("<ht", encoding="utf-8")
    kept = [out / f".qyx-staging.{live}.cd34", out / ".mynotes.tmp", out / ".draft.tmp.txt",
            out / f".a.csv.qyx{live}-z9.tmp.csv"]
    kept[0].mkdir()
    for f in kept[1:]:
        f.write_text("mine", encoding="utf-8")
        os.utime(f, (time.time() - 7200, time.time() - 7200))
    _write(out, "audit", {"a.csv": "1"})
    assert not any(p.exists() for p in [*leftovers, old_tmp, dead_tmp])
    assert all(p.exists() for p in kept)


@pytest.mark.parametrize("rel", ["../escape.csv", "/etc/x", "a/../../b", ".qyx-outputs.json",
                                 ""])
def test_output_names_cannot_leave_the_folder(tmp_path, rel):
    with pytest.raises(DataFileError, match="leave the output folder"), \
            output_set(tmp_path, "audit") as staged:
        staged.path(rel)
    assert not (tmp_path.parent / "escape.csv").exists()


def test_output_folder_that_is_a_file(tmp_path):
    f = tmp_path / "out"
    f.write_text("x", encoding="utf-8")
    with pytest.raises(DataFileError, match="is a file"), output_set(f, "audit"):
        pass


def test_a_live_run_committing_into_the_folder_is_not_disturbed(tmp_path):
    out = tmp_path / "out"
    _write(out, "audit", {"a.csv": "1"})
    journal = {"pid": os.getppid(), "run": "x", "set": "audit", "staging": ".qyx-staging.1.a",
               "backup": ".qyx-old.1.b", "new": ["a.csv"], "old": ["a.csv"]}
    (out / ".qyx-commit.json").write_text(json.dumps(journal), encoding="utf-8")
    before = _snapshot(out)
    with pytest.raises(OutputError, match="another qyx run"):
        _write(out, "audit", {"a.csv": "2"})
    assert _snapshot(out) == before
